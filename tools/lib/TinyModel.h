//===- TinyModel.h - Tiny GGUF models of each MoE architecture --*- C++ -*-===//
//
// `moe-gguf tiny` writes a small GGUF model of one architecture with the real
// llama.cpp tensor names and metadata keys (from the table of
// Architectures.h, the one moe-import checks files against), so that tests
// and users can import and run a layer of every architecture without
// downloading a model. Matmul weights (experts, shared expert, dense MLP) are
// stored as the chosen type, quantised with ggml's reference quantisers
// (runtime/Formats.h); the router, norm weights, biases and scales stay f32,
// as llama.cpp's quantiser leaves them. Values are a pure function of the
// seed and the tensor name.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Type.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace moe {

struct TinyModelOptions {
  std::string arch;              ///< general.architecture (architectures())
  ElemType type = ElemType::F32; ///< of the matmul weights
  int64_t blocks = 2;
  int64_t nEmbd = 64, nFf = 64, nExpert = 8, nExpertUsed = 2;
  int64_t nFfShared = 64; ///< qwen2moe's and qwen35moe's shared expert
  int64_t nFfDense = 64;  ///< gemma4's dense MLP
  /// ffn_gate_up_exps (and ffn_gate_up_exps.bias for gpt-oss) instead of
  /// ffn_gate_exps and ffn_up_exps: every architecture.
  bool mergedGateUp = false;
  bool noGate = false;       ///< llama: no ffn_gate_exps
  /// ffn_{up,gate,down}_exps.scale where the architecture uses them
  /// (gemma4: the down scale always; with this also its dense MLP's
  /// ffn_{up,gate,down}.scale).
  bool expertScales = false;
  float eps = 1e-6f;
  uint64_t seed = 1;
};

/// The GGUF file's bytes; an error for an unknown architecture or sizes the
/// type cannot store (a quantised row length not a multiple of 32).
llvm::Expected<std::string> makeTinyModel(const TinyModelOptions &o);

} // namespace moe
