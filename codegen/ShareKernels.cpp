//===- ShareKernels.cpp - One definition per distinct kernel --------------===//
//
// See ShareKernels.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/ShareKernels.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/StructuralHash.h"
#include "llvm/Transforms/Utils/FunctionComparator.h"

#include <map>

using namespace moe;
using namespace moe::codegen;

unsigned codegen::shareIdenticalKernels(llvm::Module &m,
                                        llvm::ArrayRef<std::vector<Step> *> programs) {
  // Candidates by structural hash, in module order: the first of each
  // distinct kernel stays, whatever the order of the hash map.
  llvm::GlobalNumberState globals;
  std::map<llvm::IRHash, llvm::SmallVector<llvm::Function *, 2>> buckets;
  llvm::StringMap<std::string> replacedBy;
  std::vector<llvm::Function *> copies;
  for (llvm::Function &f : m) {
    if (f.isDeclaration() || !f.hasExternalLinkage())
      continue;
    auto &kept = buckets[llvm::StructuralHash(f, /*DetailedHash=*/true)];
    llvm::Function *same = nullptr;
    for (llvm::Function *k : kept)
      if (llvm::FunctionComparator(k, &f, &globals).compare() == 0) {
        same = k;
        break;
      }
    if (!same) {
      kept.push_back(&f);
      continue;
    }
    replacedBy[f.getName()] = same->getName().str();
    copies.push_back(&f);
  }
  if (copies.empty())
    return 0;
  for (std::vector<Step> *steps : programs)
    for (Step &s : *steps)
      if (auto it = replacedBy.find(s.symbol); it != replacedBy.end())
        s.symbol = it->second;
  for (llvm::Function *f : copies)
    f->eraseFromParent();
  return (unsigned)copies.size();
}
