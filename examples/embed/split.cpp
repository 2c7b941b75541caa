// moe-embed-split LAYER.moe T SEED OUT [--mpi]: a layer split over 2 ranks
// (tensor parallelism: default,tp-split{ranks=2},delay-allreduce), compiled
// for 2 ranks and run on both, its params from moe's seeded generator (as
// `moe-run --seed SEED`). By default the 2 ranks are threads of this
// process; with --mpi the program runs under `mpirun -np 2`, one rank per
// process, all_reduce over MPI. The input is x.flat[i] = ((37 i) mod 101 -
// 50) / 64, exact in f32, so other programs make the same bits. Rank 0 prints the output's shape, sum and max |.| and writes its
// f32 elements to OUT (raw, row-major); any error is printed and exits 1
// (under MPI it ends the whole job, so no rank waits for a failed one).
#include "moe/Moe.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

static std::unique_ptr<moe::jit::MpiWorld> world;

static int fail(llvm::Error e) {
  std::fprintf(stderr, "moe-embed-split: error: %s%s\n",
               world ? ("rank " + std::to_string(world->rank()) + ": ").c_str() : "",
               llvm::toString(std::move(e)).c_str());
  if (world && world->size() > 1)
    world->abort(1);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6 || (argc == 6 && std::strcmp(argv[5], "--mpi"))) {
    std::fprintf(stderr, "usage: moe-embed-split LAYER.moe T SEED OUT [--mpi]\n");
    return 1;
  }
  moe::jit::Options opts;
  opts.ranks = 2;
  if (argc == 6) {
    auto w = moe::jit::MpiWorld::init(&argc, &argv);
    if (!w)
      return fail(w.takeError());
    world = std::move(*w);
    opts.comm = world.get(); // this process runs rank world->rank()
  }
  auto module = moe::parseFile(argv[1]);
  if (!module)
    return fail(module.takeError());
  if (auto e = moe::runPipeline(*module, "default,tp-split{ranks=2},delay-allreduce"))
    return fail(std::move(e));
  auto exe = moe::jit::compile(*module, module->functionNames().at(0), opts);
  if (!exe)
    return fail(exe.takeError());
  // Each param bound whole; the library cuts every rank's shard.
  if (auto e = exe->bindRandomParams(std::strtoull(argv[3], nullptr, 10)))
    return fail(std::move(e));

  const int64_t T = std::atoll(argv[2]);
  auto xShape = exe->argumentShape("x", {{"T", T}});
  if (!xShape)
    return fail(xShape.takeError());
  std::vector<float> x(xShape->at(0) * xShape->at(1));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = (float)((int64_t)(i * 37 % 101) - 50) / 64.0f;
  std::vector<moe::HostTensor> out;
  if (auto e = exe->run({{"x", {moe::DType::F32, *xShape, x.data()}}}, out, {{"T", T}}))
    return fail(std::move(e));
  if (world && world->rank() != 0)
    return 0;
  std::vector<float> v = out.at(0).toFloat();
  double sum = 0, amax = 0;
  for (float f : v) {
    sum += f;
    amax = std::fmax(amax, std::fabs(f));
  }
  std::printf("output 0: %s [%lld, %lld] on %u ranks%s sum=%.9g max_abs=%.9g\n",
              moe::dtypeName(out[0].dtype), (long long)out[0].shape[0],
              (long long)out[0].shape[1], exe->ranks(), world ? " (MPI)" : "", sum, amax);
  std::FILE *f = std::fopen(argv[4], "wb");
  if (!f || std::fwrite(v.data(), sizeof(float), v.size(), f) != v.size() || std::fclose(f))
    return fail(llvm::createStringError("cannot write '%s'", argv[4]));
  return 0;
}
