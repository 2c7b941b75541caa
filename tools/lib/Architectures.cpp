//===- Architectures.cpp - The per-architecture table of moe-import -------===//
//
// One entry per architecture: what llama.cpp's graph code fixes for the
// model's MoE feed-forward sub-block rather than reading from the GGUF file.
// Sources are llama.cpp's src/models/<arch>.cpp (the call of build_moe_ffn,
// the norm before it, and what the model adds beside it), build_moe_ffn and
// build_ffn in src/llama-graph.cpp, and the tensors each model's loader
// creates (src/models/<arch>.cpp load_arch_tensors, formerly
// src/llama-model.cpp). None of these architectures reads
// {arch}.expert_gating_func, expert_weights_norm or expert_weights_scale:
// each fixes them in its graph code (the scale stays 0, "no scaling").
//
// Every architecture's experts may come pre-merged: current llama.cpp
// creates them with create_tensor_gate_up_exps (llama-model.cpp), which
// first tries one "blk.L.ffn_gate_up_exps" {n_embd, 2*n_ff, n_expert}
// (gate rows first) and falls back to ffn_gate_exps + ffn_up_exps, and
// build_moe_ffn's merged path views the two halves of one matmul_id
// (adding gate_up_exps_b, where there are expert biases, before the views).
//
//===----------------------------------------------------------------------===//
#include "tools/lib/Architectures.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace moe;

namespace {
const ArchInfo kArchitectures[] = {
    // qwen3moe (Qwen3-30B-A3B, ...): llama.cpp src/models/qwen3moe.cpp.
    //   cur = build_norm(ffn_inp, layers[il].ffn_norm, NULL, LLM_NORM_RMS, il);
    //   build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SILU, /*norm_w=*/true, expert_weights_scale,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il, nullptr,
    //                 nullptr, ffn_up_exps_s, ffn_gate_exps_s, ffn_down_exps_s);
    // No biases; the weight normalisation clamps the sum at 6.103515625e-5
    // (build_moe_ffn). n_ff_exp = expert_feed_forward_length, else
    // n_ff / n_expert_used. The *_exps_s are the optional per-expert
    // "blk.L.ffn_*_exps.scale" {n_expert} of llama_model::load_tensors.
    {
        /*name=*/"qwen3moe",
        /*llamaSource=*/"src/models/qwen3moe.cpp, src/llama-graph.cpp (build_moe_ffn)",
        /*ffnNorm=*/"ffn_norm.weight",
        /*expertFfKey=*/"expert_feed_forward_length",
        /*expertFfRequired=*/false,
        /*expertFfFallback=*/true,
        /*gating=*/Gating::Softmax,
        /*normWeights=*/true,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Swiglu,
        /*oaiAlpha=*/0,
        /*oaiLimit=*/0,
        /*router=*/RouterInput::Normed,
        /*mayMergeGateUp=*/true,
        /*gateOptional=*/false,
        /*expertScales=*/true,
    },
    // gpt-oss (LLM_ARCH_OPENAI_MOE): llama.cpp src/models/openai-moe.cpp
    // (formerly openai-moe-iswa.cpp).
    //   cur = build_norm(ffn_inp, layers[il].attn_post_norm, nullptr,
    //                    LLM_NORM_RMS, il);   // "blk.L.post_attention_norm"
    //   build_moe_ffn(cur, ffn_gate_inp, ffn_gate_inp_b, ffn_up_exps,
    //                 ffn_up_exps_b, ffn_gate_exps, ffn_gate_exps_b,
    //                 ffn_down_exps, ffn_down_exps_b, nullptr, n_expert,
    //                 n_expert_used, LLM_FFN_SWIGLU_OAI_MOE, /*norm_w=*/false,
    //                 expert_weights_scale,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT, il);
    // swiglu_oai's alpha 1.702 and limit 7.0 are constants of build_moe_ffn,
    // not metadata. expert_feed_forward_length is required. No *_exps_s.
    {
        /*name=*/"gpt-oss",
        /*llamaSource=*/"src/models/openai-moe.cpp, src/llama-graph.cpp (build_moe_ffn)",
        /*ffnNorm=*/"post_attention_norm.weight",
        /*expertFfKey=*/"expert_feed_forward_length",
        /*expertFfRequired=*/true,
        /*expertFfFallback=*/false,
        /*gating=*/Gating::SoftmaxWeight,
        /*normWeights=*/false,
        /*routerBias=*/true,
        /*expertBiases=*/true,
        /*activation=*/Activation::SwigluOai,
        /*oaiAlpha=*/1.702f,
        /*oaiLimit=*/7.0f,
        /*router=*/RouterInput::Normed,
        /*mayMergeGateUp=*/true,
    },
    // gemma4 (Gemma-4-26B-A4B): llama.cpp src/models/gemma4.cpp (formerly
    // gemma4-iswa.cpp). The residual stream entering the FFN is attn_out:
    //   cur_mlp = build_norm(attn_out, ffn_norm, nullptr, LLM_NORM_RMS, il);
    //   cur_mlp = build_ffn(cur_mlp, ffn_up, .., ffn_gate, .., ffn_down, ..,
    //                       LLM_FFN_GELU, LLM_FFN_PAR, il);
    //   cur_mlp = build_norm(cur_mlp, ffn_post_norm_1, .., LLM_NORM_RMS, il);
    //   cur_moe = build_norm(attn_out, ffn_pre_norm_2, .., LLM_NORM_RMS, il);
    //   tmp = ggml_rms_norm(ctx0, attn_out, hparams.f_norm_rms_eps);
    //   tmp = ggml_scale(ctx0, tmp, 1.0f / sqrtf((float) n_embd));
    //   tmp = ggml_mul(ctx0, tmp, layers[il].ffn_gate_inp_s);
    //   logits = build_lora_mm(layers[il].ffn_gate_inp, tmp);
    //   cur_moe = build_moe_ffn(cur_moe, nullptr, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_GELU, /*norm_w=*/true, 1.0f,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il, logits,
    //                 ffn_gate_up_exps, ffn_up_exps_s, ffn_gate_exps_s,
    //                 ffn_down_exps_s);
    //   cur_moe = build_norm(cur_moe, ffn_post_norm_2, .., LLM_NORM_RMS, il);
    //   cur = ggml_add(ctx0, cur_mlp, cur_moe);
    //   cur = build_norm(cur, ffn_post_norm, nullptr, LLM_NORM_RMS, -1);
    // Tensors: ffn_gate_up_exps {n_embd, 2*n_ff_exp, n_expert} (gate rows
    // first, build_moe_ffn's views) or ffn_gate_exps + ffn_up_exps; the
    // per-expert down scale "blk.L.ffn_down_exps.scale" {n_expert}; the
    // router scale "blk.L.ffn_gate_inp.scale" {n_embd}. LLM_FFN_GELU with a
    // gate is ggml_geglu_split: tanh gelu (ggml's CPU backend evaluates it
    // through an f16 table; moe computes the formula).
    {
        /*name=*/"gemma4",
        /*llamaSource=*/"src/models/gemma4.cpp, src/llama-graph.cpp (build_moe_ffn, build_ffn)",
        /*ffnNorm=*/"pre_ffw_norm_2.weight",
        /*expertFfKey=*/"expert_feed_forward_length",
        /*expertFfRequired=*/true,
        /*expertFfFallback=*/false,
        /*gating=*/Gating::Softmax,
        /*normWeights=*/true,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Geglu,
        /*oaiAlpha=*/0,
        /*oaiLimit=*/0,
        /*router=*/RouterInput::Gemma4Scaled,
        /*mayMergeGateUp=*/true,
        /*gateOptional=*/false,
        /*expertScales=*/true,
        /*sharedExpert=*/false,
        /*gemma4Dense=*/true,
    },
    // qwen2moe (Qwen1.5-MoE, Qwen2-57B-A14B): llama.cpp src/models/qwen2moe.cpp.
    //   cur = build_norm(ffn_inp, ffn_norm, NULL, LLM_NORM_RMS, il);
    //   moe_out = build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SILU, /*norm_w=*/false, expert_weights_scale,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il);
    //   cur_gate_inp = build_lora_mm(ffn_gate_inp_shexp, cur);
    //   cur_gate = ggml_div(ctx0, ggml_silu(ctx0, cur_gate_inp), cur_gate_inp);
    //   cur_ffn = build_ffn(cur, ffn_up_shexp, .., ffn_gate_shexp, ..,
    //                       ffn_down_shexp, .., LLM_FFN_SILU, LLM_FFN_PAR, il);
    //   moe_out = ggml_add(ctx0, moe_out, ggml_mul(ctx0, cur_ffn, cur_gate));
    // silu(z)/z is sigmoid(z) except at z = 0, where ggml gets 0/0 = NaN;
    // moe emits `sigmoid`. Keys: expert_feed_forward_length (else n_ff /
    // n_expert_used), expert_shared_feed_forward_length (else n_ff).
    {
        /*name=*/"qwen2moe",
        /*llamaSource=*/"src/models/qwen2moe.cpp, src/llama-graph.cpp (build_moe_ffn, build_ffn)",
        /*ffnNorm=*/"ffn_norm.weight",
        /*expertFfKey=*/"expert_feed_forward_length",
        /*expertFfRequired=*/false,
        /*expertFfFallback=*/true,
        /*gating=*/Gating::Softmax,
        /*normWeights=*/false,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Swiglu,
        /*oaiAlpha=*/0,
        /*oaiLimit=*/0,
        /*router=*/RouterInput::Normed,
        /*mayMergeGateUp=*/true,
        /*gateOptional=*/false,
        /*expertScales=*/false,
        /*sharedExpert=*/true,
    },
    // qwen35moe (Qwen3.5-35B-A3B, ...): llama.cpp src/models/qwen35moe.cpp,
    // build_layer_ffn. Every block is MoE; the FFN input is the residual
    // stream after attention (ffn_residual), normalised by attn_post_norm:
    //   cur = build_norm(cur, attn_post_norm, nullptr, LLM_NORM_RMS, il);
    //   moe_out = build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SILU, /*norm_w=*/true, expert_weights_scale,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il, nullptr,
    //                 ffn_gate_up_exps, ffn_up_exps_s, ffn_gate_exps_s,
    //                 ffn_down_exps_s);
    //   ffn_shexp = build_ffn(cur, ffn_up_shexp, .., ffn_gate_shexp, ..,
    //                 ffn_down_shexp, .., LLM_FFN_SILU, LLM_FFN_PAR, il);
    //   shared_gate = ggml_sigmoid(build_lora_mm(ffn_gate_inp_shexp, cur));
    //   cur = ggml_add(moe_out, ggml_mul(ffn_shexp, shared_gate));
    // So qwen2moe's layer with normalised weights, a true sigmoid for the
    // shared gate, optional per-expert scales, and the expert input norm
    // "blk.L.post_attention_norm". Keys as qwen2moe (expert n_ff: else
    // n_ff / n_expert_used; shared n_ff: else n_ff); expert_weights_scale is
    // not read (0: no scaling).
    {
        /*name=*/"qwen35moe",
        /*llamaSource=*/"src/models/qwen35moe.cpp, src/llama-graph.cpp (build_moe_ffn, build_ffn)",
        /*ffnNorm=*/"post_attention_norm.weight",
        /*expertFfKey=*/"expert_feed_forward_length",
        /*expertFfRequired=*/false,
        /*expertFfFallback=*/true,
        /*gating=*/Gating::Softmax,
        /*normWeights=*/true,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Swiglu,
        /*oaiAlpha=*/0,
        /*oaiLimit=*/0,
        /*router=*/RouterInput::Normed,
        /*mayMergeGateUp=*/true,
        /*gateOptional=*/false,
        /*expertScales=*/true,
        /*sharedExpert=*/true,
    },
    // llama with experts (Mixtral 8x7B / 8x22B; llama.cpp has no "mixtral"
    // architecture): llama.cpp src/models/llama.cpp, the MoE branch taken
    // when the block has ffn_gate_inp.
    //   cur = build_norm(ffn_inp, ffn_norm, NULL, LLM_NORM_RMS, il);
    //   cur = build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SILU, /*norm_w=*/true, expert_weights_scale,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il, nullptr,
    //                 nullptr, ffn_up_exps_s, ffn_gate_exps_s, ffn_down_exps_s);
    // The experts' n_ff is llama.feed_forward_length (no expert key);
    // ffn_gate_exps is TENSOR_NOT_REQUIRED (without it: silu(up)). The
    // pre-2024 per-expert tensors (blk.L.ffn_gate.E.weight) are not loaded
    // by current llama.cpp either: an error naming them.
    {
        /*name=*/"llama",
        /*llamaSource=*/"src/models/llama.cpp, src/llama-graph.cpp (build_moe_ffn)",
        /*ffnNorm=*/"ffn_norm.weight",
        /*expertFfKey=*/"feed_forward_length",
        /*expertFfRequired=*/true,
        /*expertFfFallback=*/false,
        /*gating=*/Gating::Softmax,
        /*normWeights=*/true,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Swiglu,
        /*oaiAlpha=*/0,
        /*oaiLimit=*/0,
        /*router=*/RouterInput::Normed,
        /*mayMergeGateUp=*/true,
        /*gateOptional=*/true,
        /*expertScales=*/true,
    },
};

/// A count: an integer key, or (perBlock) an array of one integer per
/// block, of which block `layer`'s is taken (llama.cpp's get_key_or_arr).
llvm::Expected<int64_t> readCount(const gguf::GgufFile &f, const std::string &key,
                                  const std::string &arch, int64_t layer, int64_t nLayer,
                                  bool perBlock) {
  const gguf::Value *v = f.find(key);
  int64_t n;
  if (perBlock && v && v->isArray()) {
    auto a = f.getIntArray(key);
    if (!a)
      return err(fmt::format("{} (moe-import reads it for {})", llvm::toString(a.takeError()),
                             arch));
    if ((int64_t)a->size() != nLayer)
      return err(fmt::format("{}: key '{}' has {} values, expected one per block ({})",
                             f.name(), key, a->size(), nLayer));
    n = (*a)[layer];
  } else {
    auto u = f.getU32(key);
    if (!u)
      return err(fmt::format("{} (moe-import reads it for {})", llvm::toString(u.takeError()),
                             arch));
    n = *u;
  }
  if (n <= 0)
    return err(fmt::format("{}: key '{}' is {}{}, expected at least 1", f.name(), key, n,
                           perBlock && v && v->isArray() ? fmt::format(" for block {}", layer)
                                                         : ""));
  return n;
}
} // namespace

llvm::ArrayRef<ArchInfo> moe::architectures() { return kArchitectures; }

const ArchInfo *moe::findArchitecture(llvm::StringRef name) {
  if (name == "mixtral")
    name = "llama";
  for (const ArchInfo &a : kArchitectures)
    if (a.name == name)
      return &a;
  return nullptr;
}

std::string moe::supportedArchitectures() {
  std::string s;
  for (const ArchInfo &a : kArchitectures) {
    if (!s.empty())
      s += ", ";
    s += a.name.str();
  }
  return s + " (Mixtral is llama with experts; mixtral is accepted as its alias)";
}

llvm::Expected<ModelInfo> moe::readModelInfo(const gguf::GgufFile &f) {
  ModelInfo m;
  auto archName = f.getString("general.architecture");
  if (!archName)
    return archName.takeError();
  m.arch = findArchitecture(*archName);
  if (!m.arch)
    return err(fmt::format("{}: unsupported architecture '{}' (general.architecture); "
                           "moe-import supports: {}",
                           f.name(), archName->str(), supportedArchitectures()));
  m.prefix = archName->str();
  auto n = readCount(f, m.prefix + ".block_count", m.prefix, 0, 0, false);
  if (!n)
    return n.takeError();
  // Real models have tens to hundreds of blocks (llama.cpp loads at most
  // 512); a count in the millions would make `--all` print millions of lines.
  constexpr int64_t kMaxBlocks = 4096;
  if (*n > kMaxBlocks)
    return err(fmt::format("{}: key '{}.block_count' is {}, more than {} blocks", f.name(),
                           m.prefix, *n, kMaxBlocks));
  m.nLayer = *n;
  return m;
}

llvm::Expected<BlockSizes> moe::readBlockSizes(const gguf::GgufFile &f, const ModelInfo &m,
                                               int64_t layer) {
  const ArchInfo &A = *m.arch;
  std::string a = m.prefix;
  auto key = [&](llvm::StringRef suffix) { return a + "." + suffix.str(); };
  auto count = [&](llvm::StringRef suffix, bool perBlock) {
    return readCount(f, key(suffix), a, layer, m.nLayer, perBlock);
  };
  BlockSizes s;
  for (auto [suffix, out] : {std::pair{"embedding_length", &s.nEmbd},
                             std::pair{"expert_count", &s.nExpert},
                             std::pair{"expert_used_count", &s.nExpertUsed}}) {
    auto v = count(suffix, false);
    if (!v) {
      if (A.gateOptional && llvm::StringRef(suffix) == "expert_count" &&
          !f.has(key("expert_count")))
        return err(fmt::format("{}: missing key '{}': a llama model without experts; "
                               "moe-import imports MoE blocks only",
                               f.name(), key("expert_count")));
      return v.takeError();
    }
    *out = *v;
  }
  if (s.nExpertUsed > s.nExpert)
    return err(fmt::format("{}: key '{}' is {}, more than {} = {}", f.name(),
                           key("expert_used_count"), s.nExpertUsed, key("expert_count"),
                           s.nExpert));
  // The experts' n_ff.
  if (f.has(key(A.expertFfKey)) || A.expertFfRequired) {
    auto v = count(A.expertFfKey, A.expertFfKey == "feed_forward_length");
    if (!v)
      return v.takeError();
    s.nFf = *v;
  } else {
    auto v = count("feed_forward_length", true);
    if (!v)
      return err(fmt::format("{}: missing key '{}' (and no '{}' to derive it from as "
                             "llama.cpp does: n_ff / expert_used_count)",
                             f.name(), key(A.expertFfKey), key("feed_forward_length")));
    s.nFf = *v / s.nExpertUsed;
    if (s.nFf == 0)
      return err(fmt::format("{}: '{}' / '{}' is 0", f.name(), key("feed_forward_length"),
                             key("expert_used_count")));
  }
  if (A.sharedExpert) {
    llvm::StringRef k = f.has(key("expert_shared_feed_forward_length"))
                            ? "expert_shared_feed_forward_length"
                            : "feed_forward_length";
    auto v = count(k, k == "feed_forward_length");
    if (!v)
      return v.takeError();
    s.nFfShared = *v;
  }
  if (A.gemma4Dense) {
    auto v = count("feed_forward_length", true);
    if (!v)
      return v.takeError();
    s.nFfDense = *v;
  }
  std::string epsKey = key("attention.layer_norm_rms_epsilon");
  auto eps = f.getF32(epsKey);
  if (!eps)
    return err(fmt::format("{} (moe-import reads it for {})", llvm::toString(eps.takeError()),
                           a));
  if (!(*eps >= 0) || !std::isfinite(*eps))
    return err(fmt::format("{}: key '{}' is {}, expected a finite value >= 0", f.name(),
                           epsKey, *eps));
  s.eps = *eps;
  return s;
}

std::vector<TensorSpec> moe::blockTensors(const ArchInfo &A, const BlockSizes &s,
                                          const BlockVariant &v) {
  int64_t D = s.nEmbd, F = s.nFf, E = s.nExpert;
  std::vector<TensorSpec> t;
  auto add = [&](std::string suffix, std::vector<int64_t> dims, bool weight) {
    t.push_back({std::move(suffix), std::move(dims), weight});
  };
  if (A.gemma4Dense) { // the dense MLP beside the experts
    add("ffn_norm.weight", {D}, false);
    add("ffn_gate.weight", {s.nFfDense, D}, true);
    if (v.denseGateScale)
      add("ffn_gate.scale", {1}, false);
    add("ffn_up.weight", {s.nFfDense, D}, true);
    if (v.denseUpScale)
      add("ffn_up.scale", {1}, false);
    add("ffn_down.weight", {D, s.nFfDense}, true);
    if (v.denseDownScale)
      add("ffn_down.scale", {1}, false);
    add("post_ffw_norm_1.weight", {D}, false);
  }
  add(A.ffnNorm.str(), {D}, false);
  if (A.router == RouterInput::Gemma4Scaled)
    add("ffn_gate_inp.scale", {D}, false);
  add("ffn_gate_inp.weight", {E, D}, true);
  if (A.routerBias)
    add("ffn_gate_inp.bias", {E}, false);
  auto scale = [&](const char *w, bool has) {
    if (A.expertScales && has)
      add(fmt::format("ffn_{}_exps.scale", w), {E}, false);
  };
  if (A.mayMergeGateUp && v.mergedGateUp) {
    add("ffn_gate_up_exps.weight", {E, 2 * F, D}, true);
    if (A.expertBiases) // build_moe_ffn's gate_up_exps_b, gate columns first
      add("ffn_gate_up_exps.bias", {E, 2 * F}, false);
  } else {
    for (const char *w : {"up", "gate"}) {
      if (llvm::StringRef(w) == "gate" && A.gateOptional && !v.hasGate)
        continue;
      add(fmt::format("ffn_{}_exps.weight", w), {E, F, D}, true);
      scale(w, llvm::StringRef(w) == "up" ? v.upScale : v.gateScale);
      if (A.expertBiases)
        add(fmt::format("ffn_{}_exps.bias", w), {E, F}, false);
    }
  }
  add("ffn_down_exps.weight", {E, D, F}, true);
  scale("down", v.downScale);
  if (A.expertBiases)
    add("ffn_down_exps.bias", {E, D}, false);
  if (A.sharedExpert) {
    add("ffn_gate_inp_shexp.weight", {D}, true);
    add("ffn_gate_shexp.weight", {s.nFfShared, D}, true);
    add("ffn_up_shexp.weight", {s.nFfShared, D}, true);
    add("ffn_down_shexp.weight", {D, s.nFfShared}, true);
  }
  if (A.gemma4Dense) {
    add("post_ffw_norm_2.weight", {D}, false);
    add("post_ffw_norm.weight", {D}, false);
  }
  return t;
}
