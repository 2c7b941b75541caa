//===- TinyModel.cpp - Tiny GGUF models of each MoE architecture ----------===//
#include "tools/lib/TinyModel.h"
#include "ir/Error.h"
#include "tools/lib/Architectures.h"

#include "io/GgufWriter.h"
#include "runtime/GgufSource.h"
#include "runtime/Random.h"

#include "fmt/format.h"

#include <algorithm>
#include <cmath>

using namespace moe;

namespace {
/// How a tensor's values are drawn: uniform u in [-1, 1) (runtime/Random.h,
/// by name), then `offset + gain * u` (a matmul weight also carries
/// Random.h's 1/sqrt(row length)).
struct Draw {
  float gain, offset;
};

Draw drawFor(const ArchInfo &A, const TensorSpec &t, const TinyModelOptions &o) {
  llvm::StringRef s = t.suffix;
  if (s.ends_with("norm.weight") || s.ends_with("norm_1.weight") ||
      s.ends_with("norm_2.weight"))
    return {0.2f, 1.0f};
  if (s == "ffn_gate_inp.scale") // gemma4: the router input is ~1/sqrt(n_embd)
    return {0.2f * std::sqrt((float)o.nEmbd), std::sqrt((float)o.nEmbd)};
  if (s.ends_with(".scale"))
    return {0.5f, 1.0f};
  if (s.ends_with(".bias"))
    return {0.5f, 0.0f};
  if (s == "ffn_gate_inp.weight") // distinct routing probabilities
    return {4.0f, 0.0f};
  if (A.activation == Activation::SwigluOai && !s.starts_with("ffn_down"))
    return {16.0f, 0.0f}; // reach swiglu_oai's limit
  return {2.0f, 0.0f};
}

/// The router and the shared-expert gate vector stay f32 in quantised
/// models (llama.cpp's quantiser skips them).
bool quantisable(const TensorSpec &t) {
  return t.weight && !llvm::StringRef(t.suffix).starts_with("ffn_gate_inp");
}
} // namespace

llvm::Expected<std::string> moe::makeTinyModel(const TinyModelOptions &o) {
  const ArchInfo *A = findArchitecture(o.arch);
  if (!A)
    return err(fmt::format("unknown architecture '{}'; supported: {}", o.arch,
                           supportedArchitectures()));
  if (o.blocks < 1 || o.nEmbd < 1 || o.nFf < 1 || o.nExpert < 1 || o.nExpertUsed < 1 ||
      o.nExpertUsed > o.nExpert || o.nFfShared < 1 || o.nFfDense < 1)
    return err("sizes must be at least 1, and top-k at most the expert count");
  constexpr int64_t kMaxDim = int64_t(1) << 20, kMaxElements = int64_t(1) << 32;
  for (int64_t d : {o.blocks, o.nEmbd, o.nFf, o.nExpert, o.nFfShared, o.nFfDense})
    if (d > kMaxDim)
      return err(fmt::format("a size of {} is more than moe-gguf tiny makes ({})", d, kMaxDim));
  if (o.mergedGateUp && !A->mayMergeGateUp)
    return err(fmt::format("{} has no merged gate_up experts", o.arch));
  if (o.noGate && !A->gateOptional)
    return err(fmt::format("{} experts always have a gate", o.arch));
  if (o.noGate && o.mergedGateUp)
    return err("--no-gate and --merged-gate-up exclude each other (a merged gate_up has a gate)");
  if (o.expertScales && !A->expertScales)
    return err(fmt::format("{} does not use per-expert scales", o.arch));
  auto ggmlType = ggmlTypeFromElem(o.type);
  if (!ggmlType)
    return err(fmt::format("weights of type {} cannot be stored in GGUF",
                           elemTypeName(o.type).str()));

  gguf::GgufWriter w;
  std::string a = A->name.str(); // mixtral: llama, as llama.cpp's converter writes it
  auto key = [&](const char *k) { return a + "." + k; };
  w.addString("general.architecture", a);
  w.addString("general.name", fmt::format("moe tiny {} {}", a, elemTypeName(o.type).str()));
  w.addU32(key("block_count"), o.blocks);
  w.addU32(key("embedding_length"), o.nEmbd);
  w.addU32(key("expert_count"), o.nExpert);
  w.addU32(key("expert_used_count"), o.nExpertUsed);
  w.addF32(key("attention.layer_norm_rms_epsilon"), o.eps);
  if (A->expertFfKey == "feed_forward_length") // llama: the experts' n_ff
    w.addU32(key("feed_forward_length"), o.nFf);
  else
    w.addU32(key("expert_feed_forward_length"), o.nFf);
  if (A->sharedExpert)
    w.addU32(key("expert_shared_feed_forward_length"), o.nFfShared);
  if (A->gemma4Dense) // one value per block, as gemma4 files store it
    w.add(key("feed_forward_length"),
          gguf::MetaValue::u32Array(std::vector<uint32_t>(o.blocks, o.nFfDense)));

  BlockSizes s;
  s.nEmbd = o.nEmbd, s.nFf = o.nFf, s.nExpert = o.nExpert, s.nExpertUsed = o.nExpertUsed;
  s.nFfShared = o.nFfShared, s.nFfDense = o.nFfDense, s.eps = o.eps;
  BlockVariant v;
  v.mergedGateUp = o.mergedGateUp;
  v.hasGate = !o.noGate;
  v.upScale = o.expertScales && !o.mergedGateUp;
  v.gateScale = o.expertScales && !o.mergedGateUp && !o.noGate;
  v.downScale = o.expertScales || A->gemma4Dense;
  v.denseUpScale = v.denseGateScale = v.denseDownScale = o.expertScales && A->gemma4Dense;
  int64_t perBlock = 0; // saturates above kMaxElements
  for (const TensorSpec &t : blockTensors(*A, s, v)) {
    int64_t n = 1;
    for (int64_t d : t.dims)
      n *= d; // no overflow: each dim <= 2^21, at most 3 dims
    perBlock = std::min(perBlock + std::min(n, kMaxElements + 1), kMaxElements + 1);
  }
  if (perBlock > kMaxElements / o.blocks)
    return err(fmt::format("{} blocks of {}{} elements each: more than moe-gguf tiny makes "
                           "({} elements)", o.blocks, perBlock > kMaxElements ? "over " : "",
                           std::min(perBlock, kMaxElements), kMaxElements));
  for (int64_t l = 0; l < o.blocks; ++l)
    for (const TensorSpec &t : blockTensors(*A, s, v)) {
      std::string name = fmt::format("blk.{}.{}", l, t.suffix);
      ElemType elem = quantisable(t) ? o.type : ElemType::F32;
      if (isQuantized(elem) && t.dims.back() % 32)
        return err(fmt::format("{}: rows of {} elements cannot be stored as {} (a multiple "
                               "of 32 is needed)",
                               name, t.dims.back(), elemTypeName(elem).str()));
      auto u = randomTensor(o.seed, name, ElemType::F32, t.dims, /*isParam=*/t.weight);
      if (!u)
        return u.takeError();
      Draw d = drawFor(*A, t, o);
      for (float &x : u->f)
        x = d.offset + d.gain * x;
      auto q = Tensor::fromF32(elem, t.dims, u->f);
      if (!q)
        return q.takeError();
      std::vector<int64_t> ne(t.dims.rbegin(), t.dims.rend());
      if (auto e = w.addTensor(name, *ggmlTypeFromElem(elem), ne, q->storedBytes()))
        return e;
    }
  return w.bytes();
}
