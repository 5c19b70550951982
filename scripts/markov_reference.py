# Independent PyTorch reference: the same in-context Markov prompts (tvlens dfa.markov, 12-symbol walks,
# 8 demos, triplet format, next-symbol targets), the same GPT-2-style model and optimizer recipe.
# Question: does a PyTorch transformer leave the unigram plateau where tvlens's does not?
#
#   /usr/bin/python3 scripts/markov_reference.py [seed]      (Debian's python3-torch; STEPS, LR, BATCH, LAYERS, ATTN_ONLY=1)
import math, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
if len(sys.argv) > 1 and not sys.argv[1].isdigit(): sys.exit(f'the seed must be a non-negative integer, got {sys.argv[1]!r}')
torch.manual_seed(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
V, A, E, L, DEMOS = 32, 8, 3, 12, 8
ARROW, SEP = V, V + 1
VOCAB = V + 2
def env(name, default, kind, low):
    try:
        v = kind(os.environ.get(name, default))
        if v >= low: return v
    except ValueError:
        pass
    sys.exit(f'{name} must be a {kind.__name__} >= {low}, got {os.environ.get(name)!r}')
LAYERS, D, H = env('LAYERS', 4, int, 1), 64, 4
STEPS, LR, B = env('STEPS', 3000, int, 1), env('LR', 2e-3, float, 1e-9), env('BATCH', 32, int, 1)
ATTN_ONLY = os.environ.get('ATTN_ONLY') == '1'
rng = np.random.default_rng(1234)
T = (DEMOS + 1) * (L + 2) - 2  # the query has no y and no separator

def batch(n):
    toks = np.zeros((n, T), np.int64); tgt = np.zeros((n, T), np.int64); w = np.zeros((n, T), np.float32)
    allowed_last = []
    for r in range(n):
        alphabet = np.sort(rng.permutation(V)[:A])
        succ = [rng.permutation(A)[:E] for _ in range(A)]  # markov: symbol j leads to state j
        row, tg, ww = [], [], []
        for k in range(DEMOS + 1):
            s, seq = 0, []
            for _ in range(L):
                j = succ[s][rng.integers(E)]; seq.append(j); s = j
            x, y = [int(alphabet[j]) for j in seq[:-1]], int(alphabet[seq[-1]])
            for i, t in enumerate(x):
                row.append(t); tg.append(x[i + 1] if i + 1 < len(x) else 0); ww.append(1.0 if i + 1 < len(x) else 0.0)
            row.append(ARROW); tg.append(y); ww.append(1.0)
            if k < DEMOS: row += [y, SEP]; tg += [0, 0]; ww += [0.0, 0.0]
        toks[r], tgt[r], w[r] = row, tg, ww
        allowed_last.append(set(int(alphabet[j]) for j in succ[seq[-2]]))
    return torch.from_numpy(toks), torch.from_numpy(tgt), torch.from_numpy(w), allowed_last

def rotary(x):  # x [B, H, T, dh], GPT-NeoX halves
    T, dh = x.shape[-2], x.shape[-1]
    inv = 10000 ** (-torch.arange(0, dh, 2).float() / dh)
    ang = torch.arange(T).float()[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : dh // 2], x[..., dh // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin

class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln1 = nn.LayerNorm(D); s.qkv = nn.Linear(D, 3 * D); s.o = nn.Linear(D, D); s.ln2 = nn.LayerNorm(D); s.m1 = nn.Linear(D, 4 * D); s.m2 = nn.Linear(4 * D, D)
    def forward(s, x):
        Bn, T, _ = x.shape
        q, k, v = s.qkv(s.ln1(x)).view(Bn, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k = rotary(q), rotary(k)
        sc = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        sc = sc.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
        a = sc.softmax(-1) @ v
        x = x + s.o(a.transpose(1, 2).reshape(Bn, T, D))
        if not ATTN_ONLY: x = x + s.m2(F.gelu(s.m1(s.ln2(x)), approximate='tanh'))
        return x

class Model(nn.Module):
    def __init__(s):
        super().__init__(); s.emb = nn.Embedding(VOCAB, D); s.blocks = nn.ModuleList(Block() for _ in range(LAYERS)); s.lnf = nn.LayerNorm(D); s.out = nn.Linear(D, VOCAB)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, 0, 0.02)
        for b in s.blocks:
            for lin in (b.o, b.m2): nn.init.normal_(lin.weight, 0, 0.02 / math.sqrt(2 * LAYERS))
    def forward(s, t):
        x = s.emb(t)
        for b in s.blocks: x = b(x)
        return s.out(s.lnf(x))

m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=LR, weight_decay=0.01)
WARM = 200
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1, (i + 1) / WARM) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1, i / STEPS)))))
ev = batch(256)
t0 = time.time(); run = 0
for step in range(1, STEPS + 1):
    toks, tgt, w, _ = batch(B)
    logits = m(toks)
    loss = (F.cross_entropy(logits.reshape(-1, VOCAB), tgt.reshape(-1), reduction='none') * w.reshape(-1)).sum() / w.sum()
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    run = 0.98 * run + 0.02 * loss.item() if step > 1 else loss.item()
    if step % 250 == 0:
        with torch.no_grad():
            lg = m(ev[0])[:, -1]
            acc = sum(int(lg[r].argmax().item() in ev[3][r]) for r in range(len(ev[3]))) / len(ev[3])
        print(f'step {step} loss {run:.3f} 8-shot acc {acc:.3f} ({time.time() - t0:.0f} s)', flush=True)
