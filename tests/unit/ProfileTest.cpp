//===- ProfileTest.cpp - runtime/Profile.h --------------------------------===//
//
// The work a profile counts per kernel (FLOPs from the shapes, a
// matmul_id's weight bytes from the experts its ids select), calls summed
// over runs, and the merge / serialize round trip MPI ranks use.
//
//===----------------------------------------------------------------------===//
#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "runtime/Executable.h"
#include "runtime/Profile.h"

#include <gtest/gtest.h>

using namespace moe;

namespace {

const char *kText = R"(
func @f(%x: tensor<T x 1 x 32 x f32>, %w: tensor<4 x 16 x 32 x f32> {param},
        %ids: tensor<T x 2 x i32>, %y: tensor<T x 32 x f32>,
        %v: tensor<8 x 32 x f32> {param})
    -> tensor<T x 2 x 16 x f32>, tensor<T x 8 x f32> where T in [1, 16] {
  %a = matmul_id %x, %w, %ids
  %b = matmul %y, %v
  return %a, %b
}
)";

const KernelTimes *find(const Profile &p, llvm::StringRef label) {
  for (const KernelTimes &k : p.kernels())
    if (k.label == label)
      return &k;
  return nullptr;
}

TEST(Profile, CountsWorkFromShapesAndIds) {
  auto m = parseModuleString(kText);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  DiagEngine diag;
  ASSERT_TRUE(verifyModule(**m, diag));
  ExecOptions eo;
  eo.threads = 2;
  eo.jit.useCache = false;
  auto exe = Executable::compile(*(*m)->functions[0], eo);
  ASSERT_TRUE(bool(exe)) << llvm::toString(exe.takeError());

  const int64_t T = 3;
  std::vector<int32_t> ids = {0, 2, 2, 2, 0, 0}; // experts 0 and 2 only
  std::vector<Tensor> args;
  args.push_back(Tensor::zeros(ElemType::F32, {T, 1, 32}));
  args.push_back(Tensor::zeros(ElemType::F32, {4, 16, 32}));
  auto idt = Tensor::fromI32({T, 2}, ids);
  ASSERT_TRUE(bool(idt)) << llvm::toString(idt.takeError());
  args.push_back(std::move(*idt));
  args.push_back(Tensor::zeros(ElemType::F32, {T, 32}));
  args.push_back(Tensor::zeros(ElemType::F32, {8, 32}));
  SymbolBindings syms;
  syms["T"] = T;

  Profile p;
  RunOptions ro;
  ro.profile = &p;
  for (int i = 0; i < 3; ++i) {
    auto r = (*exe)->run(args, syms, ro);
    ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  }
  EXPECT_EQ(p.runs(), 3u);
  const KernelTimes *a = find(p, "matmul_id %a"), *b = find(p, "matmul %b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->calls, 3u);
  EXPECT_EQ(b->calls, 3u);
  EXPECT_NE(a->symbol.find("matmul_id_a"), std::string::npos);
  EXPECT_DOUBLE_EQ(a->flops, 3 * 2.0 * T * 2 * 16 * 32);   // 2 T k N K
  EXPECT_DOUBLE_EQ(a->weightBytes, 3 * 2.0 * 16 * 32 * 4); // 2 experts of 16x32 f32
  EXPECT_DOUBLE_EQ(b->flops, 3 * 2.0 * T * 8 * 32);        // 2 M N K
  EXPECT_DOUBLE_EQ(b->weightBytes, 3 * 8.0 * 32 * 4);      // the whole weight
  const KernelTimes *route = find(p, "route(%ids)");
  ASSERT_TRUE(route);
  EXPECT_EQ(route->flops, 0); // helpers count no work
  EXPECT_EQ((*exe)->allReduceBytes(syms), 0);

  // The round trip through text (MPI ranks) and a merge sum everything.
  auto q = Profile::deserialize(p.serialize());
  ASSERT_TRUE(bool(q)) << llvm::toString(q.takeError());
  q->merge(p);
  EXPECT_EQ(q->runs(), 6u);
  EXPECT_DOUBLE_EQ(q->runMs(), 2 * p.runMs());
  const KernelTimes *a2 = find(*q, "matmul_id %a");
  ASSERT_TRUE(a2);
  EXPECT_EQ(a2->calls, 6u);
  EXPECT_EQ(a2->symbol, a->symbol);
  EXPECT_DOUBLE_EQ(a2->weightBytes, 2 * a->weightBytes);
  EXPECT_EQ(q->kernels().size(), p.kernels().size());

  auto bad = Profile::deserialize("k 1 2 x");
  EXPECT_FALSE(bool(bad));
  llvm::consumeError(bad.takeError());
}

} // namespace
