// moe-embed: a small MoE layer held as text, parsed, optimised with the
// default pipeline, JIT-compiled and run on inputs made here. Prints what
// the queries say, one line per output, the same run into caller memory and
// a deliberate mistake's error kind, and exits 0; any other error is printed
// and exits 1. No arguments, no files: it runs from any directory.
#include "moe/Moe.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

// The layer: routed as gpt-oss routes (top-k of the raw logits, then a
// softmax over the k chosen), its experts' gate and up weights pre-merged
// into one gate_up tensor (gate rows first), a geglu activation, and the
// routing weights applied before the down projection (the same result, the
// projection being linear); 4 experts, top-2, n_embd 32, expert n_ff 64
// (sizes made up for the example). Result types are left out: the parser
// infers them.
static const char *kLayer = R"(
func @moe_ffn(%x: tensor<T x 32 x f32>, %gate_inp: tensor<4 x 32 x f32> {param},
              %gate_up_exps: tensor<4 x 128 x 32 x q8_0> {param},
              %down_exps: tensor<4 x 32 x 64 x f32> {param})
    -> tensor<T x 32 x f32> where T in [1, 256] {
  %logits = matmul %x, %gate_inp
  %ids = topk %logits {k = 2}
  %chosen = gather %logits, %ids {axis = 1}
  %w = softmax %chosen {axis = 1}
  %w3 = reshape %w {shape = [T, 2, 1]}
  %x3 = reshape %x {shape = [T, 1, 32]}
  %gate_up = matmul_id %x3, %gate_up_exps, %ids
  %gate = slice %gate_up {axis = 2, start = 0, size = 64}
  %up = slice %gate_up {axis = 2, start = 64, size = 64}
  %act = geglu %gate, %up
  %weighted = mul %act, %w3
  %down = matmul_id %weighted, %down_exps, %ids
  %out = reduce_sum %down {axis = 1}
  return %out
}
)";

static int fail(llvm::Error e) {
  std::fprintf(stderr, "moe-embed: error: %s\n", llvm::toString(std::move(e)).c_str());
  return 1;
}

int main() {
  // The library's warnings (e.g. a corrupt cache object) and remarks, here
  // printed with this program's name; errors are returned, not sent here.
  moe::setDiagnosticHandler([](moe::DiagnosticSeverity s, const std::string &m) {
    std::fprintf(stderr, "moe-embed: %s: %s\n",
                 s == moe::DiagnosticSeverity::Warning ? "warning" : "remark", m.c_str());
  });
  auto module = moe::parse(kLayer, "embedded-layer");
  if (!module)
    return fail(module.takeError());
  if (auto e = moe::runPipeline(*module, "default"))
    return fail(std::move(e));
  auto exe = moe::jit::compile(*module, "moe_ffn");
  if (!exe)
    return fail(exe.takeError());

  // The router from this program's memory (used in place), the experts from
  // moe's seeded generator.
  std::vector<float> router(4 * 32);
  for (size_t i = 0; i < router.size(); ++i)
    router[i] = std::sin(0.37f * (float)i) * 0.2f;
  if (auto e = exe->bindParam("gate_inp", {moe::DType::F32, {4, 32}, router.data()}))
    return fail(std::move(e));
  if (auto e = exe->bindRandomParams(/*seed=*/42))
    return fail(std::move(e));

  // What the function takes and gives, asked before running.
  for (const moe::SymbolInfo &s : exe->symbols())
    std::printf("symbol %s in [%lld, %lld]\n", s.name.c_str(), (long long)s.lo,
                (long long)s.hi);
  const int64_t T = 5;
  auto result = exe->resultDesc(0, {{"T", T}});
  if (!result)
    return fail(result.takeError());
  std::printf("result 0 at T = %lld: %s [%lld, %lld] (%s)\n", (long long)T,
              moe::dtypeName(result->dtype), (long long)result->shape[0],
              (long long)result->shape[1], result->type.c_str());

  std::vector<float> x(T * 32);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::cos(0.11f * (float)i);
  std::vector<moe::HostTensor> out;
  if (auto e = exe->run({{"x", {moe::DType::F32, {T, 32}, x.data()}}}, out, {{"T", T}}))
    return fail(std::move(e));

  // The same run with T read from x's shape, its result written straight
  // into this program's memory.
  std::vector<float> y(T * 32);
  if (auto e = exe->run({{"x", {moe::DType::F32, {T, 32}, x.data()}}},
                        {moe::MutableTensorView{moe::DType::F32, {T, 32}, y.data()}}))
    return fail(std::move(e));
  std::printf("into caller memory, T inferred: %s\n",
              std::memcmp(y.data(), out[0].bytes.data(), out[0].bytes.size()) == 0 ? "equal"
                                                                                 : "DIFFERENT");

  // A mistake, told apart by its kind rather than its text.
  std::vector<moe::HostTensor> none;
  if (llvm::Error e = exe->run({{"x", {moe::DType::F32, {7, 32}, x.data()}}}, none, {{"T", T}})) {
    std::optional<moe::ErrorKind> kind = moe::errorKind(e);
    std::printf("%s error: %s\n", kind ? moe::errorKindName(*kind) : "unknown",
                llvm::toString(std::move(e)).c_str());
  }

  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<float> v = out[i].toFloat();
    double sum = 0, amax = 0;
    for (float f : v) {
      sum += f;
      amax = std::fmax(amax, std::fabs(f));
    }
    std::printf("output %zu: %s [%lld, %lld] sum=%.6f max_abs=%.6f\n", i,
                moe::dtypeName(out[i].dtype), (long long)out[i].shape[0],
                (long long)out[i].shape[1], sum, amax);
  }
  return 0;
}
