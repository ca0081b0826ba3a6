# docs/speed.md "The training step on the CPU": upsampling + weighted CE head, fwd+bwd, 2 threads (ms, median)
import torch, time
import torch.nn.functional as F
torch.set_num_threads(2)
def t(f, n=8):
    f(); ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return sorted(ts)[n//2]*1000
w = torch.rand(11) + 0.5
y = torch.randint(0, 12, (8, 360, 480))
z0 = torch.randn(8, 11, 45, 60)
def make(dt, fmt):
    return z0.to(dt).contiguous(memory_format=fmt).requires_grad_()
def run(z, cast_before, fmt_before=None):
    def f():
        zz = z.float() if cast_before else z
        if fmt_before is not None: zz = zz.contiguous(memory_format=fmt_before)
        up = F.interpolate(zz, size=(360, 480), mode="bilinear", align_corners=False)
        l = F.cross_entropy(up.float(), y, weight=w, ignore_index=11)
        l.backward()
    return f
cl, cf = torch.channels_last, torch.contiguous_format
print("bf16 CL upsample, then float (today)  %.1f ms" % t(run(make(torch.bfloat16, cl), False)))
print("float CL upsample                      %.1f ms" % t(run(make(torch.bfloat16, cl), True)))
print("float NCHW upsample                    %.1f ms" % t(run(make(torch.bfloat16, cl), True, cf)))
print("bf16 NCHW upsample, then float         %.1f ms" % t(run(make(torch.bfloat16, cl), False, cf)))
