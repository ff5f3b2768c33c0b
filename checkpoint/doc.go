// Package checkpoint reads the DSA indexer weights of chosen layers straight
// from a Hugging Face checkpoint of DeepSeek-V3.2 (DeepseekV32ForCausalLM,
// model_type deepseek_v32) or GLM-5 (GlmMoeDsaForCausalLM, glm_moe_dsa):
// config.json, model.safetensors.index.json (or one model.safetensors) and
// the shards, each memory-mapped only when one of its tensors is needed.
// Nothing but the requested tensors is decoded; FP8 weights are dequantised
// block-wise with their weight_scale_inv.
//
// What the indexer is, as read from Transformers 5 (models/deepseek_v32 and
// models/glm_moe_dsa, modular files) and DeepSeek's reference
// inference/model.py:
//
// Tensors, per layer i (module DeepseekV32Indexer / GlmMoeDsaIndexer at
// model.layers.{i}.self_attn.indexer):
//
//	wq_b.weight          [H·D, q_lora_rank]  Linear, no bias (FP8 + wq_b.weight_scale_inv in FP8 checkpoints)
//	wk.weight            [D, hidden_size]    Linear, no bias (FP8 + wk.weight_scale_inv)
//	k_norm.weight, .bias [D]                 LayerNorm with affine weight AND bias, eps 1e-6 (KNormEps)
//	weights_proj.weight  [H, hidden_size]    Linear, no bias; stored BF16 (reference) and run in FP32
//	                                         (Transformers keeps it in fp32); some requantised checkpoints
//	                                         store it FP8 with a scale, which is handled too
//
// with H = index_n_heads (64 for V3.2, 32 for GLM-5), D = index_head_dim
// (128). A weight_scale_inv has shape [ceil(out/128), ceil(in/128)]
// (quantization_config.weight_block_size; scale_fmt ue8m0 in V3.2).
// GLM-5.2 adds indexer_types: "shared" layers reuse the previous full
// layer's top-k and ship no indexer tensors (Config.IndexerTypes,
// Config.HasIndexer). The MTP layer (model.layers.{num_hidden_layers}) also
// has an indexer; it is not served.
//
// The computation, per token with hidden state x (the attention input,
// after input_layernorm) and q-LoRA latent qr = q_a_layernorm(q_a_proj(x)):
//
//	q = wq_b·qr, viewed [H, D];  k = k_norm(wk·x), one [D] key shared by all heads
//	RoPE on the FIRST qk_rope_head_dim (64) dims of every q head and of k; the rest pass
//	score(t, s) = Σ_h w[t,h] · ReLU(q[t,h]·k[s] · D^-1/2),  w = weights_proj(x) · H^-1/2
//
// RoPE layout: DeepSeek-V3.2's indexer is NeoX (half split: pairs (i, i+32)
// of the 64 dims; Transformers apply_rotary_pos_emb, reference
// apply_rotary_emb(interleaved=False)); GLM-5's is interleaved (pairs (2i,
// 2i+1); config key indexer_rope_interleave: true, which vLLM reads
// (default false) and Transformers hard-codes for glm_moe_dsa). Config.
// RopeInterleaved decides. Transformers' interleaved variant de-interleaves
// before rotating, so its output is a fixed permutation of the in-place
// GPT-J rotation: dot products are the same. The cos/sin are the model's own
// rotary embedding over qk_rope_head_dim dims: for V3.2 rope_theta 10000
// with YaRN (factor 40, original_max_position_embeddings 4096, beta_fast 32,
// beta_slow 1, mscale = mscale_all_dim = 1, so the attention factor that
// scales cos/sin is 1; with the correction range rounded to [10, 23],
// frequencies 0..10 of the 32 keep their value, 23..31 are divided by 40,
// and those between blend linearly). GLM-5/5.1: plain RoPE, theta 1e6;
// GLM-5.2: theta 8e6 under rope_parameters.
//
// Not in Transformers (its indexer is the bf16/fp32 equivalent): DeepSeek's
// reference then applies rotate_activation — an orthonormal Walsh–Hadamard
// over the 128 dims, scale 128^-1/2 — to q and k after RoPE, quantises both
// to FP8 E4M3 per 128 values with ue8m0 scales, and folds q's scale and
// D^-1/2 into w (w = weights_proj(x)·H^-1/2·q_scale·D^-1/2), k's scale being
// applied after the head sum. The Hadamard changes nothing in exact
// arithmetic.
package checkpoint
