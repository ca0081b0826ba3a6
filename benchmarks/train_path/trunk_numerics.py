# docs/speed.md "The training step on the CPU": bf16-autocast vs fp32 on trained weights: logits error and argmax agreement, with/without the
# Downsampler pool cast (trunk in bf16); also train-mode gradient cosine vs fp32
import torch, sys
import torch.nn.functional as F
from iaseg.models import blocks
from iaseg.checkpoint import model_from_checkpoint
from iaseg.data import build_dataset
torch.set_num_threads(1)
out = model_from_checkpoint("weights/camvid_erfpspnet_ce.pt")
model = out[0] if isinstance(out, tuple) else out
model = model.float().to(memory_format=torch.channels_last)
ds = build_dataset("camvid", sys.argv[1] if len(sys.argv) > 1 else "../shared/data/camvid", "val")
idx = [0, 30, 60, 90]
x = torch.stack([ds[i]["image"] for i in idx]).contiguous(memory_format=torch.channels_last)
y = torch.stack([ds[i]["label"] for i in idx])
def orig(self, x):  # the downsampler before the change: the concat promotes to fp32
    return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))
def trunk(self, x):
    c = self.conv(x)
    return F.relu(self.bn(torch.cat([c, self.pool(x).to(c.dtype)], 1)))
def run(mode, amp, patched):
    blocks.Downsampler.forward = trunk if patched else orig
    model.train(mode == "train")
    torch.manual_seed(0)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        z = model(x)
    z = z.float()
    if mode == "train":
        F.cross_entropy(z, y, ignore_index=11).backward()
        g = torch.cat([p.grad.flatten() for p in model.parameters()])
        return z.detach(), g
    return z.detach(), None
for mode in ["eval", "train"]:
    ref, gref = run(mode, False, False)
    for patched in [False, True]:
        z, g = run(mode, True, patched)
        err = ((z - ref).norm() / ref.norm()).item()
        agree = (z.argmax(1) == ref.argmax(1)).float().mean().item()
        msg = f"{mode:5s} trunk={patched!s:5s} logits rel err {err:.4f} argmax agree {100*agree:.3f}%"
        if g is not None:
            msg += f" grad cosine {F.cosine_similarity(g, gref, 0).item():.5f} rel err {((g-gref).norm()/gref.norm()).item():.4f}"
        print(msg, flush=True)
