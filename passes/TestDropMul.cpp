//===- TestDropMul.cpp - A deliberately wrong pass (tests only) -----------===//
//
// Replaces the first `mul` whose first operand already has the result type
// by that operand: a miscompile that verifies structurally. It exists so a
// test can check that --verify-numerics catches a broken rewrite.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"

using namespace moe;

namespace {
class TestDropMulPass : public Pass {
public:
  explicit TestDropMulPass(const PassOptions &) {}
  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    for (auto &op : f.getBody())
      if (op.is(OpKind::Mul) && op.getOperand(0)->getType() == op.getResult()->getType()) {
        op.getResult()->replaceAllUsesWith(op.getOperand(0));
        op.erase();
        return true;
      }
    return false;
  }
};
} // namespace

std::unique_ptr<Pass> moe::createTestDropMulPass(const PassOptions &o) {
  return std::make_unique<TestDropMulPass>(o);
}
