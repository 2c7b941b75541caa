//===- Architectures.h - What llama.cpp fixes per MoE architecture -*- C++ -*-===//
//
// moe-import reads sizes and epsilons from a GGUF file's metadata, but some of
// what a model computes is not in the file: llama.cpp fixes it in the graph
// code of each architecture (src/models/<arch>.cpp and the arguments that code
// passes to build_moe_ffn in src/llama-graph.cpp). This is the one table of
// those facts (Architectures.cpp); each entry names its llama.cpp source.
// Adding an architecture whose FFN is this shape (norm, router, top-k,
// experts) is one more entry; a new shape needs a new emitter in ImportMain.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>

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

/// The experts' gated activation (llama.cpp's llm_ffn_op_type).
enum class Activation {
  Swiglu,    ///< LLM_FFN_SILU with a gate: silu(gate) * up
  SwigluOai, ///< LLM_FFN_SWIGLU_OAI_MOE: swiglu_oai{alpha, limit}
};

struct ArchInfo {
  /// general.architecture, also the prefix of the hyper-parameter keys.
  llvm::StringRef name;
  /// The llama.cpp files the entry was read from.
  llvm::StringRef llamaSource;
  /// The pre-FFN rms_norm weight, without "blk.L." (its eps is
  /// {arch}.attention.layer_norm_rms_epsilon).
  llvm::StringRef ffnNorm;
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
};

/// Every supported architecture, in table order.
llvm::ArrayRef<ArchInfo> architectures();
/// The entry named `name` (general.architecture), or null.
const ArchInfo *findArchitecture(llvm::StringRef name);
/// "gpt-oss, qwen3moe": for messages.
std::string supportedArchitectures();

} // namespace moe
