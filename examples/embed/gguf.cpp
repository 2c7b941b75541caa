// moe-embed-gguf LAYER.moe MODEL.gguf T: a layer imported from a GGUF model
// (moe-import MODEL.gguf --layer L -o LAYER.moe), optimised with the default
// pipeline, JIT-compiled and run with the model's own weights, which the
// Executable maps from the file and uses in place. The input x[t, i] is
// cos(0.11 * (t * n_embd + i)); prints the output's shape, sum and max |.|,
// one line, and exits 0; any error is printed and exits 1.
#include "moe/Moe.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

static int fail(llvm::Error e) {
  std::fprintf(stderr, "moe-embed-gguf: error: %s\n", llvm::toString(std::move(e)).c_str());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: moe-embed-gguf LAYER.moe MODEL.gguf T\n");
    return 1;
  }
  auto module = moe::parseFile(argv[1]);
  if (!module)
    return fail(module.takeError());
  if (auto e = moe::runPipeline(*module, "default"))
    return fail(std::move(e));
  std::string fn = module->functionNames().at(0);
  auto exe = moe::jit::compile(*module, fn);
  if (!exe)
    return fail(exe.takeError());
  if (auto e = exe->bindGgufParams(argv[2]))
    return fail(std::move(e));

  const int64_t T = std::atoll(argv[3]);
  auto xShape = exe->argumentShape("x", {{"T", T}});
  if (!xShape)
    return fail(xShape.takeError());
  int64_t n = xShape->at(0) * xShape->at(1);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = std::cos(0.11f * (float)i);
  std::vector<moe::HostTensor> out;
  if (auto e = exe->run({{"x", {moe::DType::F32, *xShape, x.data()}}}, out, {{"T", T}}))
    return fail(std::move(e));
  std::vector<float> v = out.at(0).toFloat();
  double sum = 0, amax = 0;
  for (float f : v) {
    sum += f;
    amax = std::fmax(amax, std::fabs(f));
  }
  std::printf("output 0: %s [%lld, %lld] sum=%.9g max_abs=%.9g\n",
              moe::dtypeName(out[0].dtype), (long long)out[0].shape[0],
              (long long)out[0].shape[1], sum, amax);
  return 0;
}
