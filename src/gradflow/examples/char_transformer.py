"""A small character-level transformer (a GPT: token and position embeddings, pre-LayerNorm
blocks of causal self-attention and a GELU MLP, a linear head) trained with AdamW and
cross-entropy to predict the next character of the opening of Lewis Carroll's "Alice's
Adventures in Wonderland" (1865, public domain; examples/data/alice.txt).

The model is written once against a library handle ``lib`` and runs unchanged with
``lib = gradflow`` or ``lib = torch``: gradflow's API is PyTorch's for everything it uses.

    python -m gradflow.examples.char_transformer [--steps 300] [--device cuda]
"""

import argparse
import math
from importlib import resources

import numpy as np


def load_text():
    """The training text, and its characters as int64 codes with the vocabulary."""
    text = resources.files("gradflow.examples").joinpath("data/alice.txt").read_text(encoding="utf-8")
    chars = sorted(set(text))
    codes = np.array([chars.index(c) for c in text], dtype=np.int64)
    return text, codes, chars


def make_model(lib, vocab_size, block_size=32, n_embd=48, n_head=4, n_layer=2, dtype=None):
    """The GPT, built with ``lib`` (gradflow or torch)."""
    nn, F = lib.nn, lib.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(n_embd, 3 * n_embd)
            self.proj = nn.Linear(n_embd, n_embd)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(n_embd, dim=2)
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(n_embd), CausalSelfAttention()
            self.ln2 = nn.LayerNorm(n_embd)
            self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, n_embd)
            self.pos = nn.Embedding(block_size, n_embd)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.head = nn.Linear(n_embd, vocab_size)

        def forward(self, idx, targets=None):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(T, device=idx.device))
            for block in self.blocks:
                x = block(x)
            logits = self.head(self.ln_f(x))
            if targets is None:
                return logits, None
            return logits, F.cross_entropy(logits.view(-1, vocab_size), targets.view(-1))

    model = GPT()
    return model.double() if dtype == "float64" else model


def batches(codes, block_size, batch_size, seed):
    """An endless stream of (inputs, targets) windows as int64 arrays, from a seeded rng."""
    rng = np.random.default_rng(seed)
    while True:
        start = rng.integers(0, len(codes) - block_size - 1, size=batch_size)
        x = np.stack([codes[s:s + block_size] for s in start])
        y = np.stack([codes[s + 1:s + block_size + 1] for s in start])
        yield x, y


def train(lib, model, codes, steps, block_size=32, batch_size=16, lr=3e-3, seed=0, device="cpu",
          log_every=0):
    """AdamW steps on random windows; returns the loss of every step."""
    opt = lib.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    losses = []
    for step, (x, y) in zip(range(steps), batches(codes, block_size, batch_size, seed)):
        xb, yb = lib.tensor(x, device=device), lib.tensor(y, device=device)
        _, loss = model(xb, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}")
    return losses


def sample(lib, model, chars, prompt, length, block_size=32, device="cpu", seed=0):
    """Greedy-free sampling: ``length`` characters drawn from the model's softmax after
    ``prompt``."""
    rng = np.random.default_rng(seed)
    idx = [chars.index(c) for c in prompt]
    model.eval()
    with lib.no_grad():
        for _ in range(length):
            ctx = lib.tensor(np.array([idx[-block_size:]]), device=device)
            logits, _ = model(ctx)
            p = lib.softmax(logits[0, -1].double(), dim=-1).cpu().numpy()
            idx.append(int(rng.choice(len(chars), p=p / p.sum())))
    model.train()
    return "".join(chars[i] for i in idx)


def main(argv=None):
    """Trains the model from the command line and prints a sample of its text."""
    import gradflow as gf

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    gf.manual_seed(args.seed)
    text, codes, chars = load_text()
    model = make_model(gf, len(chars)).to(args.device)
    print(f"{len(text)} characters, vocabulary {len(chars)}, "
          f"{sum(p.numel() for p in model.parameters())} parameters; "
          f"uniform guessing costs {math.log(len(chars)):.3f}")
    train(gf, model, codes, args.steps, seed=args.seed, device=args.device, log_every=50)
    print(repr(sample(gf, model, chars, "Alice ", 120, device=args.device)))


if __name__ == "__main__":
    main()
