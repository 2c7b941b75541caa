//===- DCE.cpp - Dead code elimination ------------------------------------===//
//
// Marks live every op reachable backwards from the return along use-def
// chains and erases the rest. All ops are pure; an unused collective is dead
// on every rank alike, so erasing it keeps ranks in step. Needs nothing
// before it.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"

#include "llvm/ADT/DenseSet.h"

using namespace moe;

namespace {
class DCEPass : public Pass {
public:
  explicit DCEPass(const PassOptions &) {}
  Statistic numErased{this, "num-erased", "dead ops erased"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    Operation *ret = f.getReturn();
    if (!ret)
      return false;
    llvm::DenseSet<Operation *> live;
    std::vector<Operation *> work{ret};
    while (!work.empty()) {
      Operation *op = work.back();
      work.pop_back();
      if (!live.insert(op).second)
        continue;
      for (auto *v : op->getOperands())
        if (Operation *d = v->getDefiningOp())
          work.push_back(d);
    }
    std::vector<Operation *> dead;
    for (auto &op : f.getBody())
      if (!live.count(&op))
        dead.push_back(&op);
    for (auto *op : dead)
      op->dropAllReferences();
    for (auto *op : dead) {
      op->erase();
      ++numErased;
    }
    return !dead.empty();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createDCEPass(const PassOptions &o) {
  return std::make_unique<DCEPass>(o);
}
