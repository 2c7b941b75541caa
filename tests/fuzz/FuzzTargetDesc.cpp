//===- FuzzTargetDesc.cpp - libFuzzer target: the --target-desc reader ----===//
//
// Any bytes as a target description (the JSON `moe-opt --target-desc` reads):
// parse them; when accepted, query every known kernel's limits. Errors name
// the key; nothing crashes.
//
//===----------------------------------------------------------------------===//
#include "passes/TargetDesc.h"

using namespace moe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef json(reinterpret_cast<const char *>(data), size);
  auto t = TargetDesc::parse(json, "fuzz.json", "fuzz");
  if (!t) {
    llvm::consumeError(t.takeError());
    return 0;
  }
  SymbolRanges ranges;
  ranges["T"] = {1, 8192};
  TensorType dynamic({DimExpr::symbol("T"), DimExpr(64)}, ElemType::F32);
  TensorType fixed({DimExpr(4), DimExpr(8), DimExpr(64)}, ElemType::F32);
  for (llvm::StringRef k : TargetDesc::knownKernels()) {
    (void)t->getLimits(k);
    (void)t->whyInvalid(k, dynamic, ranges);
    (void)t->whyInvalid(k, fixed, ranges);
  }
  return 0;
}
