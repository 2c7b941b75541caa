//===- Architectures.h - What llama.cpp fixes per MoE architecture -*- C++ -*-===//
//
// moe-import reads sizes and epsilons from a GGUF file's metadata, but some of
// what a model computes is not in the file: llama.cpp fixes it in the graph
// code of each architecture (src/models/<arch>.cpp and the arguments that code
// passes to build_moe_ffn / build_ffn in src/llama-graph.cpp). This is the one
// table of those facts (Architectures.cpp); each entry names its llama.cpp
// source and quotes the call it was read from.
//
// From the table and a file's metadata, blockTensors() lists the tensors of
// one block's feed-forward sub-block with their IR shapes: moe-import checks
// a file against that list and `moe-gguf tiny` writes test models from it,
// so the two cannot disagree on a name or a shape.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/Gguf.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace moe {

/// How routing weights are made from the router logits
/// (llama.cpp's llama_expert_gating_func_type).
enum class Gating {
  /// softmax over all experts, top-k of the probabilities, gather them
  /// (LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX).
  Softmax,
  /// top-k of the raw logits, softmax over the k selected logits
  /// (LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT).
  SoftmaxWeight,
};

/// A gated activation (llama.cpp's llm_ffn_op_type with a gate).
enum class Activation {
  Swiglu,    ///< LLM_FFN_SILU: silu(gate) * up (silu(up) without a gate)
  SwigluOai, ///< LLM_FFN_SWIGLU_OAI_MOE: swiglu_oai{alpha, limit}
  Geglu,     ///< LLM_FFN_GELU: gelu(gate) * up, tanh gelu (ggml_geglu_split)
};

/// How the router's input is made.
enum class RouterInput {
  /// the normalised FFN input (the expert input)
  Normed,
  /// gemma4: rms_norm of the residual stream without a weight, scaled by
  /// 1/sqrt(n_embd), times the learned ffn_gate_inp.scale [n_embd]
  Gemma4Scaled,
};

struct ArchInfo {
  /// general.architecture, also the prefix of the hyper-parameter keys.
  llvm::StringRef name;
  /// The llama.cpp files the entry was read from.
  llvm::StringRef llamaSource;
  /// The experts' pre-FFN rms_norm weight, without "blk.L." (its eps is
  /// {arch}.attention.layer_norm_rms_epsilon).
  llvm::StringRef ffnNorm;
  /// The key of the experts' n_ff, without "{arch}.". When it is absent and
  /// expertFfFallback is set, n_ff is {arch}.feed_forward_length /
  /// expert_used_count (llama.cpp's qwen2moe/qwen3moe fallback).
  llvm::StringRef expertFfKey;
  bool expertFfRequired;
  bool expertFfFallback;
  Gating gating;
  /// Top-k weights divided by their sum (clamped at 2^-14), build_moe_ffn's
  /// norm_w.
  bool normWeights;
  /// ffn_gate_inp.bias added to the logits, ffn_{up,gate,down}_exps.bias
  /// added per selected expert (add_id).
  bool routerBias;
  bool expertBiases;
  Activation activation;
  /// swiglu_oai's constants (hard-coded in llama.cpp's graph code).
  float oaiAlpha = 0, oaiLimit = 0;
  RouterInput router = RouterInput::Normed;
  /// The file may hold one ffn_gate_up_exps [E, 2F, D] (gate rows first;
  /// with expertBiases also ffn_gate_up_exps.bias [E, 2F]) instead of
  /// ffn_gate_exps and ffn_up_exps (llama.cpp's create_tensor_gate_up_exps:
  /// every architecture here).
  bool mayMergeGateUp = false;
  /// ffn_gate_exps may be absent: the experts are silu(up) (llama).
  bool gateOptional = false;
  /// The graph passes the optional per-expert scales
  /// ffn_{up,gate,down}_exps.scale [E] to build_moe_ffn: each one present
  /// multiplies its projection's result per selected expert.
  bool expertScales = false;
  /// A shared expert beside the routed ones, gated by
  /// sigmoid(x . ffn_gate_inp_shexp) (qwen2moe, qwen35moe); its n_ff is
  /// {arch}.expert_shared_feed_forward_length, else feed_forward_length.
  bool sharedExpert = false;
  /// gemma4: a dense gelu MLP beside the experts (ffn_norm -> ffn_{gate,up,
  /// down} -> post_ffw_norm_1), the experts normalised by pre_ffw_norm_2
  /// and post_ffw_norm_2, their sum by post_ffw_norm. The dense n_ff is
  /// {arch}.feed_forward_length (one value or one per block). A block
  /// without ffn_gate_inp.weight is dense and not imported.
  bool gemma4Dense = false;
};

/// Every supported architecture, in table order.
llvm::ArrayRef<ArchInfo> architectures();
/// The entry named `name` (general.architecture), or null. "mixtral" (the
/// name DESIGN.md and some converters use) is an alias of "llama", which is
/// what llama.cpp's converter writes for Mixtral.
const ArchInfo *findArchitecture(llvm::StringRef name);
/// "qwen3moe, gpt-oss, ...": for messages.
std::string supportedArchitectures();

/// The sizes of one block, read from the metadata and checked.
struct BlockSizes {
  int64_t nEmbd = 0, nFf = 0, nExpert = 0, nExpertUsed = 0;
  int64_t nFfShared = 0; ///< sharedExpert
  int64_t nFfDense = 0;  ///< gemma4Dense
  float eps = 0;
};

/// A file's architecture entry and block count, and the sizes of block
/// `layer`. Errors name the key (missing, mistyped, 0, k > E, ...).
struct ModelInfo {
  const ArchInfo *arch = nullptr;
  /// The file's general.architecture: the prefix of its keys.
  std::string prefix;
  int64_t nLayer = 0;
};
llvm::Expected<ModelInfo> readModelInfo(const gguf::GgufFile &f);
llvm::Expected<BlockSizes> readBlockSizes(const gguf::GgufFile &f, const ModelInfo &m,
                                          int64_t layer);

/// The optional parts a block has (probed in a file by the importer, chosen
/// by `moe-gguf tiny`).
struct BlockVariant {
  bool mergedGateUp = false; ///< mayMergeGateUp (then hasGate)
  bool hasGate = true;       ///< gateOptional
  /// expertScales: ffn_{up,gate,down}_exps.scale. llama.cpp loads the up
  /// and gate scales only with separate ffn_up_exps / ffn_gate_exps.
  bool upScale = false, gateScale = false, downScale = false;
  /// gemma4Dense: the dense MLP's ffn_{up,gate,down}.scale [1] (build_ffn's
  /// up_s, gate_s, down_s).
  bool denseUpScale = false, denseGateScale = false, denseDownScale = false;
};

/// One tensor of a block's FFN sub-block.
struct TensorSpec {
  std::string suffix;        ///< without "blk.L."
  std::vector<int64_t> dims; ///< IR order (GGUF ne reversed)
  /// A matmul weight (any stored type), else f32 (norm weights, biases,
  /// scales).
  bool weight;
};

/// The tensors of one block in the order the imported function takes them.
std::vector<TensorSpec> blockTensors(const ArchInfo &a, const BlockSizes &s,
                                     const BlockVariant &v);

} // namespace moe
