//===- ToolCommon.h - Flags and hooks shared by moe-opt and moe-run -*- C++ -*-===//
//
// --verify-numerics is an instrumentation the pass manager offers (passes/)
// and the tools fill with the reference interpreter (runtime/): tools are the
// only layer that sees both, so the hook is wired here.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "passes/Pass.h"
#include "llvm/Support/CommandLine.h"

namespace moe {

struct NumericsFlags {
  explicit NumericsFlags(llvm::cl::OptionCategory &cat);
  llvm::cl::opt<bool> verify;
  llvm::cl::opt<unsigned> seed;
  llvm::cl::opt<double> rtol;
};

/// Installs the --verify-numerics instrumentation on `pm` when requested.
llvm::Error addNumericsInstrumentation(PassManager &pm, const NumericsFlags &flags,
                                       const Module &m);

} // namespace moe
