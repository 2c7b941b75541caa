//===- CSE.cpp - Common subexpression elimination -------------------------===//
//
// Two ops of the same kind, with the same operands (as values), attributes
// and result type compute the same tensor: every op is pure, and a collective
// runs identically on every rank. The later one (in a topological walk) is
// replaced by the earlier, which is defined before all of the later's users.
// Needs nothing before it.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"

#include <map>

using namespace moe;

namespace {
class CSEPass : public Pass {
public:
  explicit CSEPass(const PassOptions &) {}
  Statistic numCSE{this, "num-cse'd", "ops merged into an identical earlier op"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    using Key = std::tuple<OpKind, std::vector<Value *>, std::string, std::string>;
    std::map<Key, Operation *> seen;
    std::vector<Operation *> dead;
    for (auto &op : f.getBody()) {
      if (op.is(OpKind::Return) || op.getNumResults() != 1)
        continue;
      std::vector<Value *> operands(op.getOperands().begin(), op.getOperands().end());
      if (op.hasTrait(Trait::Commutative) && operands.size() == 2 && operands[1] < operands[0])
        std::swap(operands[0], operands[1]);
      Key key{op.getKind(), operands, op.attrs().str(), op.getResult()->getType().str()};
      auto [it, inserted] = seen.try_emplace(key, &op);
      if (inserted)
        continue;
      op.getResult()->replaceAllUsesWith(it->second->getResult());
      dead.push_back(&op);
    }
    for (auto *op : dead) {
      op->erase();
      ++numCSE;
    }
    return !dead.empty();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createCSEPass(const PassOptions &o) {
  return std::make_unique<CSEPass>(o);
}
