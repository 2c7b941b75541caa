// moe-embed: a small MoE layer held as text, parsed, optimised with the
// default pipeline, JIT-compiled and run on inputs made here. Prints one line
// per output and exits 0; any error is printed and exits 1. No arguments,
// no files: it runs from any directory.
#include "moe/Moe.h"

#include <cmath>
#include <cstdio>
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

  const int64_t T = 5;
  std::vector<float> x(T * 32);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::cos(0.11f * (float)i);
  std::vector<moe::HostTensor> out;
  if (auto e = exe->run({{"x", {moe::DType::F32, {T, 32}, x.data()}}}, out, {{"T", T}}))
    return fail(std::move(e));

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
