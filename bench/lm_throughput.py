"""Training and generation throughput: dca's HF tiny model against a plain-torch twin.

The twin has the same shape and the same weights (copied from the HF model, and checked to give
the same logits), so the ratio measures only the cost of going through ``transformers``.
Run: ``.venv/bin/python bench/lm_throughput.py [--preset tiny] [--quick]``.
Writes bench/out/lm_throughput.json and .png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


# --------------------------------------------------------------------------- plain-torch twin

class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Block(nn.Module):
    def __init__(self, d: int, heads: int, inter: int, eps: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = RMSNorm(d, eps), RMSNorm(d, eps)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(d, inter, bias=False), nn.Linear(d, inter, bias=False)
        self.down = nn.Linear(inter, d, bias=False)

    def forward(self, x, cos, sin, cache=None):
        B, T, D = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).view(B, T, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, D))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class PlainLM(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, inter: int, eps: float, theta: float):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, inter, eps) for _ in range(layers))
        self.norm = RMSNorm(d, eps)
        hd = d // heads
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd), persistent=False)

    def forward(self, idx, start: int = 0, caches=None):
        T = idx.shape[1]
        f = torch.arange(start, start + T).float()[:, None] * self.inv_freq[None]
        e = torch.cat([f, f], -1)
        x = self.emb(idx)
        cos, sin = e.cos().to(x.dtype), e.sin().to(x.dtype)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.emb.weight.T

    @torch.no_grad()
    def generate(self, idx, n: int):
        caches = [[] for _ in self.blocks]
        logits = self(idx, 0, caches)
        out, pos = [], idx.shape[1]
        for _ in range(n):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            out.append(nxt)
            logits = self(nxt, pos, caches)
            pos += 1
        return torch.cat(out, 1)


def twin_of(hf) -> PlainLM:
    c = hf.config
    m = PlainLM(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                c.intermediate_size, c.rms_norm_eps, c.rope_parameters["rope_theta"])
    m.emb.weight.data.copy_(hf.model.embed_tokens.weight.data)
    m.norm.weight.data.copy_(hf.model.norm.weight.data)
    for b, l in zip(m.blocks, hf.model.layers):
        a, mlp = l.self_attn, l.mlp
        for dst, src in ((b.q, a.q_proj), (b.k, a.k_proj), (b.v, a.v_proj), (b.o, a.o_proj),
                         (b.gate, mlp.gate_proj), (b.up, mlp.up_proj), (b.down, mlp.down_proj)):
            dst.weight.data.copy_(src.weight.data)
        b.norm1.weight.data.copy_(l.input_layernorm.weight.data)
        b.norm2.weight.data.copy_(l.post_attention_layernorm.weight.data)
    return m


# --------------------------------------------------------------------------- measurements

def train_rate(step_fn, model, batch: int, seq: int, steps: int, bf16: bool) -> float:
    """Tokens per second of forward+backward+AdamW on random tokens (best of ``steps`` timed steps:
    the machine is shared, and the fastest step is the least disturbed one)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(3, 2048, (steps + 1, batch, seq), generator=g)
    model.train()
    best = float("inf")
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = step_fn(model, data[i])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:  # the first step warms up
            best = min(best, time.perf_counter() - t0)
    return batch * seq / best


def hf_loss(model, x):
    return model(input_ids=x, labels=x, use_cache=False).loss


def hf_loss_default(model, x):
    # what a naive loop writes: a padding mask passed, the KV cache left at the config default (on)
    return model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss


def plain_loss(model, x):
    logits = model(x)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), x[:, 1:].reshape(-1))


def gen_rate(fn, batch: int, prompt: int, new: int, reps: int) -> float:
    """Generated tokens per second (best of ``reps``), greedy, KV cache, fixed length."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(3, 2048, (batch, prompt), generator=g)
    fn(x[:, :8], 4)  # warm up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x, new)
        best = min(best, time.perf_counter() - t0)
    return batch * new / best


def dca_decode(hf):
    """dca's generation path (``dca.reasoning.policy.decode``: the HF forward and ``DynamicCache``
    in a plain loop), greedy, with no stop token so that every call makes exactly ``n`` tokens."""
    from dca.reasoning.policy import decode

    def run(ids, n):
        with torch.no_grad():
            return decode(hf, ids, torch.ones_like(ids), temperature=0.0, top_k=None, max_new_tokens=n, stops=[],
                          pad=0, suppress=[])
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("DCA_TORCH_THREADS", "2")))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved generation rounds (best of each kept)")
    ap.add_argument("--bf16", action="store_true", help="measure bf16 autocast even without bf16 hardware")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import PreTrainedTokenizerFast  # noqa: F401  (import cost outside timings)

    from dca.models.tiny import build_model, count_parameters, get_preset

    class _Tok:  # build_model needs only the vocabulary size and special ids
        def __init__(self, n):
            self.n, self.pad_token_id, self.bos_token_id, self.eos_token_id = n, 0, 1, 2

        def __len__(self):
            return self.n

    steps = 3 if args.quick else args.steps
    hf = build_model(_Tok(2048), args.preset)
    twin = twin_of(hf)
    x = torch.randint(3, 2048, (2, 32))
    with torch.no_grad():
        hf.eval(), twin.eval()
        diff = (hf(input_ids=x).logits - twin(x)).abs().max().item()
    print(f"{args.preset}: {count_parameters(hf) / 1e6:.2f}M parameters; max |logit difference| HF vs plain = {diff:.2e}")

    from dca.models.tiny import bf16_fast

    rows = []
    modes = (False, True) if bf16_fast() or args.bf16 else (False,)
    if len(modes) == 1:
        print(f"bf16 autocast skipped: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no bf16 "
              "matmul units, where bf16 runs ~10x slower than fp32 (--bf16 to measure anyway)")
    for bf16 in modes:
        hf_rate = train_rate(hf_loss, hf, args.batch, args.seq, steps, bf16)
        naive = train_rate(hf_loss_default, hf, args.batch, args.seq, steps, bf16)
        plain = train_rate(plain_loss, twin, args.batch, args.seq, steps, bf16)
        mode = "bf16 autocast" if bf16 else "fp32"
        rows.append({"what": f"train {mode}", "hf": hf_rate, "hf_naive": naive, "plain": plain})

    hf.eval(), twin.eval()
    for batch in (1, 16):
        def hf_gen(ids, n):
            with torch.no_grad():
                return hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                   min_new_tokens=n, do_sample=False, pad_token_id=0)

        reps = 2 if args.quick else 4
        # interleaved rounds, best of each: the machine is shared and load drifts within a run
        rates: dict[str, list[float]] = {"hf": [], "hf_naive": [], "plain": []}
        for _ in range(args.rounds):
            for key, fn in (("hf", dca_decode(hf)), ("hf_naive", hf_gen), ("plain", twin.generate)):
                rates[key].append(gen_rate(fn, batch, 128, 32, reps))
        rows.append({"what": f"generate greedy, batch {batch}", **{k: max(v) for k, v in rates.items()}})

    print(f"threads {args.threads}, batch {args.batch} x {args.seq} tokens for training; best of several runs")
    print("HF = dca's path (train: labels, use_cache=False, no mask; generate: policy.decode, the HF forward +")
    print("     DynamicCache in a loop); HF alt = train: attention mask + default cache; generate: model.generate()")
    print(f"\n{'tokens/s':<28}{'HF':>10}{'HF alt':>10}{'plain':>10}{'HF/plain':>10}{'alt/plain':>10}")
    for r in rows:
        r["ratio"] = r["hf"] / r["plain"]
        naive = f"{r['hf_naive']:.0f}"
        r["alt_ratio"] = r["hf_naive"] / r["plain"]
        print(f"{r['what']:<28}{r['hf']:>10.0f}{naive:>10}{r['plain']:>10.0f}{r['ratio']:>10.2f}{r['alt_ratio']:>10.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lm_throughput.json").write_text(json.dumps(
        {"preset": args.preset, "batch": args.batch, "seq": args.seq, "logit_diff": diff, "rows": rows}, indent=2))
    from paired_bars import paired_bars

    paired_bars(OUT / "lm_throughput.png", [r["what"] for r in rows], [r["hf"] for r in rows],
                [r["plain"] for r in rows], first_label="transformers (dca path)", second_label="plain torch twin",
                ylabel="tokens / s", title=f"{args.preset} LM throughput, {args.threads} thread(s)")
    print(f"\nwrote {OUT / 'lm_throughput.json'} and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
