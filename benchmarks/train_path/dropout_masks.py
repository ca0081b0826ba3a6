# docs/speed.md "The training step on the CPU": mask generators on a bf16 8x128x45x60 tensor, 1 thread (ms, min of 10)
import torch, time, numpy as np
torch.set_num_threads(1)
def t(f, n=10):
    f(); ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return min(ts)*1000
shape=(8,128,45,60)  # x8 blocks; 64ch 90x120 x5
x = torch.rand(shape).bfloat16().contiguous(memory_format=torch.channels_last)
n = x.numel()
def native(): return torch.nn.functional.dropout(x, 0.3, True)
def bern(): return torch.empty_like(x).bernoulli_(0.7)
def np_raw():
    seed = int(torch.randint(0, 2**62, (1,)))
    bg = np.random.PCG64(seed)
    raw = bg.random_raw((n + 3) // 4)
    return raw
def np_mask():
    seed = int(torch.randint(0, 2**62, (1,)))
    raw = np.random.PCG64(seed).random_raw((n + 3) // 4)
    r = torch.from_numpy(raw.view(np.uint16)[:n])
    # uint16 compare: torch supports uint16 comparisons?
    keep = r >= 19661
    return keep
def np_mask_i16():
    seed = int(torch.randint(0, 2**62, (1,)))
    raw = np.random.PCG64(seed).random_raw((n + 3) // 4)
    r = torch.from_numpy(raw.view(np.int16)[:n])
    keep = r >= (19661 - 32768)
    return keep
def np_full():
    keep = np_mask_i16().view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)
    noise = keep.to(x.dtype).mul_(1/0.7)
    return x * noise
def np_where():
    keep = np_mask_i16().view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)
    return torch.where(keep, x * (1/0.7), 0)
def philox():
    seed = int(torch.randint(0, 2**62, (1,)))
    np.random.Philox(seed).random_raw((n + 3) // 4)
def torch_i32():
    bits = torch.empty((n + 1) // 2, dtype=torch.int32).random_()
    return bits.view(torch.int16)[:n] >= 0
for f in [native, bern, np_raw, philox, np_mask_i16, np_full, np_where, torch_i32]:
    print(f.__name__, "%.1f ms" % t(f))
k = np_mask_i16(); print("drop rate", 1 - k.float().mean().item())
