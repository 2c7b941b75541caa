// moe-embed: a small MoE layer held as text, parsed, optimised with the
// default pipeline, JIT-compiled and run on inputs made here. Prints one line
// per output and exits 0; any error is printed and exits 1. No arguments,
// no files: it runs from any directory.
#include "moe/Moe.h"

#include <cmath>
#include <cstdio>
#include <vector>

static const char *kLayer = R"(
// 4 experts, top-2, n_embd 32, expert n_ff 64 (sizes made up for the example).
func @moe_ffn(%x: tensor<T x 32 x f32>,
              %gate_inp: tensor<4 x 32 x f32> {param},
              %up_exps: tensor<4 x 64 x 32 x q8_0> {param},
              %gate_exps: tensor<4 x 64 x 32 x q8_0> {param},
              %down_exps: tensor<4 x 32 x 64 x f32> {param})
    -> tensor<T x 32 x f32> where T in [1, 256] {
  %logits = matmul %x, %gate_inp           : tensor<T x 4 x f32>
  %probs  = softmax %logits {axis = -1}    : tensor<T x 4 x f32>
  %ids    = topk %probs {k = 2}            : tensor<T x 2 x i32>
  %w      = gather %probs, %ids {axis = 1} : tensor<T x 2 x f32>
  %x3     = reshape %x {shape = [T, 1, 32]} : tensor<T x 1 x 32 x f32>
  %up     = matmul_id %x3, %up_exps, %ids  : tensor<T x 2 x 64 x f32>
  %gate   = matmul_id %x3, %gate_exps, %ids : tensor<T x 2 x 64 x f32>
  %act    = swiglu %gate, %up              : tensor<T x 2 x 64 x f32>
  %down   = matmul_id %act, %down_exps, %ids : tensor<T x 2 x 32 x f32>
  %w3     = reshape %w {shape = [T, 2, 1]} : tensor<T x 2 x 1 x f32>
  %wd     = mul %down, %w3                 : tensor<T x 2 x 32 x f32>
  %out    = reduce_sum %wd {axis = 1}      : tensor<T x 32 x f32>
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
