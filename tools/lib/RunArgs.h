//===- RunArgs.h - moe-run's symbols and argument sources -------*- C++ -*-===//
//
// How moe-run binds a function's symbols (`--sym T=7`) and where each of
// its arguments comes from (`--input`, `--param`, `--weights`, `--seed`).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "runtime/Binder.h"
#include "runtime/Interpreter.h"

#include <string>
#include <vector>

namespace moe {

/// `--sym NAME=N` values bound to the symbols of `f`, each checked against
/// its range; every symbol that is not rank-dependent must be given.
llvm::Expected<SymbolBindings> bindSymbols(const Function &f, llvm::ArrayRef<std::string> syms);

/// moe-run's flags that say where arguments come from.
struct ArgFlags {
  llvm::ArrayRef<std::string> inputs, params; ///< NAME=FILE.npy
  uint64_t seed = 0;
  std::string weights; ///< a GGUF model; empty: none
};

/// Where the arguments come from: files for the named arguments, the
/// --weights GGUF file for the other params (in place for the JIT), the
/// seeded generator for the rest.
struct Sources {
  ArgSource source;
  InPlaceSource inPlace; ///< null without --weights
  ReleaseFn release;     ///< drops pages of the mapped --weights file
};

llvm::Expected<Sources> makeSource(const Function &f, const ArgFlags &flags);

} // namespace moe
