//===- TargetDesc.h - What a target's fused kernels are valid for -*- C++ -*-===//
//
// A target description is data, not code: per fused kernel, the shape
// classes the target's implementation is valid for. A fusing pass asks the
// target (`whyInvalid`) before it rewrites, so "this kernel is wrong for
// multi-token dynamic shapes" is an explicit, checked fact instead of a
// pattern the fuser happens not to match (a guard such as writing `x*x`
// instead of `pow(x, 2)`, which the next fuser may well match).
//
// Shape classes are facts about the kernel's input `x`: rows = the product
// of all dims but the last (symbolic when a dim is), cols = the last dim.
// The built-in `cpu` target's kernels are valid for every shape class; other
// targets are read from JSON files (the comments are not part of the format):
//
//   {
//     "name": "npu-like",                 // optional, default: the file stem
//     "kernels": {                        // optional; keys are kernel names
//       "rms_norm": {
//         "available": true,              // false: the target has no such kernel
//         "dynamic_rows": false,          // false: rows must be static
//         "static_rows_only": true,       // same as "dynamic_rows": false
//         "max_rows": 1,                  // int or null (no limit), over the
//         "min_rows": 1,                  //   symbols' declared ranges
//         "dynamic_cols": true,
//         "max_cols": 8192, "min_cols": 1 // int or null
//       }
//     }
//   }
//
// Every key is optional and defaults to "valid" (the cpu target's value); a
// kernel that is not listed is valid for every shape class. An unknown key,
// an unknown kernel name or a value of the wrong type is an error naming the
// file and the key's path (`kernels.rms_norm.max_rows`).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Type.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

namespace moe {

/// The shape classes one fused kernel is valid for. Defaults: all of them.
struct KernelShapeLimits {
  bool available = true;
  bool dynamicRows = true;
  std::optional<int64_t> minRows, maxRows;
  bool dynamicCols = true;
  std::optional<int64_t> minCols, maxCols;
};

class TargetDesc {
public:
  explicit TargetDesc(std::string name) : name(std::move(name)) {}

  /// The built-in CPU target: every fused kernel valid for every shape class.
  static const TargetDesc &cpu();
  /// Reads a JSON target file; errors name the file and the offending key.
  static llvm::Expected<TargetDesc> load(llvm::StringRef path);
  /// Parses JSON text; `source` names it in errors; `defaultName` is used
  /// when the text has no "name".
  static llvm::Expected<TargetDesc> parse(llvm::StringRef json, llvm::StringRef source,
                                          llvm::StringRef defaultName);
  /// The fused kernels a target file may describe.
  static llvm::ArrayRef<llvm::StringRef> knownKernels();

  const std::string &getName() const { return name; }
  /// The limits of `kernel` (all-valid defaults when the target lists none).
  KernelShapeLimits getLimits(llvm::StringRef kernel) const;
  void setLimits(llvm::StringRef kernel, KernelShapeLimits l) { kernels[kernel] = l; }

  /// Nullopt when the target's fused `kernel` is valid for an input of type
  /// `x` over the symbols' declared `ranges`; else why not, e.g. "rows T are
  /// dynamic and the target's fused rms_norm requires static rows".
  std::optional<std::string> whyInvalid(llvm::StringRef kernel, const TensorType &x,
                                        const SymbolRanges &ranges) const;

private:
  std::string name;
  llvm::StringMap<KernelShapeLimits> kernels;
};

} // namespace moe
