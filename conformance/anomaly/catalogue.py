"""The catalogue of realistic porting bugs of the anomaly port, for `python -m conformance mutate`: each entry is a
source patch of `implementations/anomaly` that a porter could plausibly make, and the suite, under the `ci`
profile, must fail on it.

The first entries are the defects the negative controls inject (`conformance/anomaly/test_negative_controls.py`):
Flax's defaults (tanh GELU, LayerNorm eps 1e-6 and fast variance), weights silently left at their initial
values (D1), sample 0's encoding decoded for every sample (D5) and a positional encoding indexed by batch
position (D6). The tanh GELU also stands for D7: its error (about 4.5e-4) passes the original "MSE < 1e-3"
gate and fails the required tiers. The others are further bugs of the kinds people make when porting a
transformer: attention scale, softmax axis and q/k/v layout, pre- vs post-norm, LayerNorm axes, residuals,
positional encodings, the variate/time transposes, the anomaly score's formula and reduction axes, matmul
precision, and the exported JAX artifact's static batch.

A TorchScript runtime left in grad mode is not in the catalogue: the frozen module computes bit for bit the
same outputs with autograd on or off (checked on every batch bucket), so that patch is an equivalent mutant.
"""

from __future__ import annotations

from conformance.mutate import Mutant

MODEL = "implementations/anomaly/model.py"
CONVERT = "implementations/anomaly/convert.py"
EXPORT = "implementations/anomaly/export.py"

_NORM = "    return nnx.LayerNorm(n, epsilon=eps, use_fast_variance=False, rngs=rngs)\n"
_TOKENS = "        tokens = self.embed(self.in_norm(jnp.swapaxes(W, 1, 2)))  # (B, D, d_model): one token per variate\n"


def _sinusoid(position: str) -> str:
    """Source lines adding a sinusoidal positional encoding at ``position`` (an expression broadcastable
    against tokens (B, D, d_model)) to ``tokens``."""
    return (
        _TOKENS + f"        position = {position}\n"
        "        freq = jnp.exp(-math.log(10000.0) * (jnp.arange(tokens.shape[-1]) // 2 * 2) / tokens.shape[-1])\n"
        "        angle = position * freq\n"
        "        even = jnp.arange(tokens.shape[-1]) % 2 == 0\n"
        "        tokens = tokens + jnp.where(even, jnp.sin(angle), jnp.cos(angle))\n"
    )


_LOAD = """\
    model = nnx.eval_shape(lambda: build(cfg))
    params = list(nnx.state(model, nnx.Param).flat_state())
    expected: dict[str, tuple[tuple[int, ...], object, bool]] = {}
    for path, var in params:
        name, transpose = torch_name(path)
        shape = tuple(var.get_value().shape)
        expected[name] = (shape[::-1] if transpose else shape, var, transpose)
    mismatch = state_dict_mismatch({k: (shape, "float32") for k, (shape, _, _) in expected.items()}, tensors)
    if mismatch:
        raise CheckpointError(mismatch.message(where))
"""

_ATTENTION_QKV = """\
        qkv = self.in_proj(x).reshape(B, T, 3, self.heads, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, T, H, hd)
"""

_ENCODER_LAYER = """\
        x = x + self.self_attn(self.norm1(x))
        return x + self.linear2(gelu(self.linear1(self.norm2(x))))
"""

MUTANTS: list[Mutant] = [
    # -- the defects of the negative controls, as source patches ----------------------------------------------
    Mutant(
        id="anomaly.gelu-tanh",
        path=MODEL,
        old="    return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.asarray(_SQRT_HALF, x.dtype)))\n",
        new="    return jax.nn.gelu(x)\n",
        kind="default-argument",
        doc="jax.nn.gelu's default tanh approximation for torch's exact erf GELU (an error of ~4.5e-4, which the "
        "original 'MSE < 1e-3' gate passes: D7)",
    ),
    Mutant(
        id="anomaly.layernorm-eps-1e-6",
        path=MODEL,
        old=_NORM,
        new="    return nnx.LayerNorm(n, use_fast_variance=False, rngs=rngs)\n",
        kind="default-argument",
        doc="LayerNorm with Flax's default epsilon 1e-6 instead of torch's 1e-5",
    ),
    Mutant(
        id="anomaly.layernorm-fast-variance",
        path=MODEL,
        old=_NORM,
        new="    return nnx.LayerNorm(n, epsilon=eps, rngs=rngs)\n",
        kind="default-argument",
        doc="LayerNorm with Flax's default use_fast_variance=True: E[x^2] - E[x]^2 on near-constant windows",
    ),
    Mutant(
        id="anomaly.dropped-weights",
        path=CONVERT,
        old=_LOAD,
        new="""\
    model = build(cfg)  # initialised, then loaded like torch's load_state_dict(strict=False)
    params = list(nnx.state(model, nnx.Param).flat_state())
    expected: dict[str, tuple[tuple[int, ...], object, bool]] = {}
    for path, var in params:
        name, transpose = torch_name(path)
        name = name.replace(".self_attn.out_proj.", ".self_attn.out.")  # a module renamed in the port
        shape = tuple(var.get_value().shape)
        expected[name] = (shape[::-1] if transpose else shape, var, transpose)
    expected = {k: v for k, v in expected.items() if k in tensors}  # unmatched names keep their init
""",
        kind="state",
        doc="weights loaded non-strictly under a renamed key: the attention out-projections silently keep "
        "their random initialisation (D1)",
    ),
    Mutant(
        id="anomaly.sample-zero-for-all",
        path=MODEL,
        old="        h_time, _ = self.encoder(W)\n",
        new="        h_time = self.encoder(W)[0][:1]\n",
        kind="layout",
        doc="the wrapper's encoder(W)[0] indexes a tensor: sample 0's encoding is decoded for every sample (D5)",
    ),
    Mutant(
        id="anomaly.batch-position-pe",
        path=MODEL,
        old=_TOKENS,
        new=_sinusoid(
            "jnp.arange(B, dtype=tokens.dtype)[:, None, None]  # a (T, B, E) table read batch-first"
        ),
        kind="positional-encoding",
        doc="a positional encoding written for (T, B, E) and added batch-first: indexed by the sample's position "
        "in the batch (D6)",
    ),
    # -- attention ------------------------------------------------------------------------------------------
    Mutant(
        id="anomaly.attention-scale-width",
        path=MODEL,
        old='jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=HIGHEST) / math.sqrt(hd)',
        new='jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=HIGHEST) / math.sqrt(E)',
        kind="attention-scale",
        doc="attention logits scaled by 1/sqrt(d_model) instead of 1/sqrt(head_dim)",
    ),
    Mutant(
        id="anomaly.softmax-axis",
        path=MODEL,
        old="attn = jax.nn.softmax(logits, axis=-1)",
        new="attn = jax.nn.softmax(logits, axis=-2)",
        kind="reduction-axis",
        doc="attention softmax over the queries (axis -2) instead of the keys",
    ),
    Mutant(
        id="anomaly.qkv-head-major",
        path=MODEL,
        old=_ATTENTION_QKV,
        new="""\
        qkv = self.in_proj(x).reshape(B, T, self.heads, 3, hd)
        q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]  # (B, T, H, hd)
""",
        kind="layout",
        doc="the fused in-projection split head-major (H, 3, hd) instead of torch's [q; k; v] rows",
    ),
    Mutant(
        id="anomaly.post-norm",
        path=MODEL,
        old=_ENCODER_LAYER,
        new="""\
        x = self.norm1(x + self.self_attn(x))
        return self.norm2(x + self.linear2(gelu(self.linear1(x))))
""",
        kind="formula",
        doc="post-norm encoder layers (torch's default norm_first=False) where the model uses pre-norm",
    ),
    # -- normalization, residuals, encodings -------------------------------------------------------------------
    Mutant(
        id="anomaly.layernorm-two-axes",
        path=MODEL,
        old=_NORM,
        new="    return nnx.LayerNorm(n, epsilon=eps, use_fast_variance=False, reduction_axes=(-2, -1), rngs=rngs)\n",
        kind="reduction-axis",
        doc="LayerNorm statistics over the last two axes (the whole (D, L) window or (T, E) sequence) instead "
        "of the last one",
    ),
    Mutant(
        id="anomaly.residual-mlp-no-skip",
        path=MODEL,
        old="        return x + self.fc2(gelu(self.fc1(x)))\n",
        new="        return self.fc2(gelu(self.fc1(x)))\n",
        kind="residual",
        doc="the decoder's residual GELU MLP without its skip connection",
    ),
    Mutant(
        id="anomaly.decoder-block-order",
        path=MODEL,
        old="        return self.mlp(self.norm(self.attn(h)))\n",
        new="        return self.norm(self.mlp(self.attn(h)))\n",
        kind="formula",
        doc="the decoder block's LayerNorm applied after the MLP instead of before it",
    ),
    Mutant(
        id="anomaly.variate-pe",
        path=MODEL,
        old=_TOKENS,
        new=_sinusoid("jnp.arange(tokens.shape[1], dtype=tokens.dtype)[None, :, None]  # iTransformer's PE"),
        kind="positional-encoding",
        doc="the itransformer encoder's sinusoidal positional encoding added to the itr tokens, which have none",
    ),
    Mutant(
        id="anomaly.variates-reshaped",
        path=MODEL,
        old=_TOKENS,
        new="        tokens = self.embed(self.in_norm(W.reshape(W.shape[0], W.shape[2], W.shape[1])))\n",
        kind="transpose",
        doc="(B, L, D) -> (B, D, L) by reshape instead of a transpose: each 'variate' token mixes variates",
    ),
    Mutant(
        id="anomaly.time-reshaped",
        path=MODEL,
        old="        return jnp.swapaxes(y, 1, 2), h\n",
        new="        return y.reshape(y.shape[0], y.shape[2], y.shape[1]), h\n",
        kind="transpose",
        doc="the encoder's (B, D, L) output back to (B, L, D) by reshape instead of a transpose",
    ),
    # -- the score --------------------------------------------------------------------------------------------
    Mutant(
        id="anomaly.score-squared",
        path=MODEL,
        old="        score = jnp.mean(jnp.abs(O1 - W), axis=(1, 2))\n",
        new="        score = jnp.mean((O1 - W) ** 2, axis=(1, 2))\n",
        kind="formula",
        doc="the anomaly score as a mean squared residual instead of the mean absolute residual",
    ),
    Mutant(
        id="anomaly.score-batch-mean",
        path=MODEL,
        old="        score = jnp.mean(jnp.abs(O1 - W), axis=(1, 2))\n",
        new="        score = jnp.broadcast_to(jnp.mean(jnp.abs(O1 - W)), W.shape[:1])\n",
        kind="reduction-axis",
        doc="the score reduced over the batch too (one value broadcast to every sample): samples mix",
    ),
    # -- precision ---------------------------------------------------------------------------------------------
    Mutant(
        id="anomaly.linear-precision",
        path=MODEL,
        old="    return nnx.Linear(n_in, n_out, precision=HIGHEST, rngs=rngs)\n",
        new="    return nnx.Linear(n_in, n_out, rngs=rngs)\n",
        kind="precision",
        doc="Linear layers at the global default matmul precision: TF32 or one bfloat16 pass on accelerators "
        "unless the caller pins 'highest' (CPUs compute the same)",
    ),
    Mutant(
        id="anomaly.attention-precision",
        path=MODEL,
        old='jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=HIGHEST)',
        new='jnp.einsum("bqhd,bkhd->bhqk", q, k)',
        kind="precision",
        doc="the attention logits' einsum at the global default matmul precision",
    ),
    # -- exported artifacts --------------------------------------------------------------------------------------
    Mutant(
        id="anomaly.export-static-batch",
        path=EXPORT,
        old='    (b,) = jax.export.symbolic_shape("b")\n',
        new="    b = 2  # the example batch\n",
        kind="default-argument",
        doc="the JAX port exported at the example batch instead of a symbolic one: other batch sizes fail (D4)",
    ),
]
