//===- SmithCheck.h - Differential checks of one program (moe-smith) -*- C++ -*-===//
//
// The checks moe-smith runs on each program, in-process, each by name:
//
//   roundtrip          print(parse(print(f))) == print(f), and it verifies
//   pass:NAME          every registered pass alone (test-only passes
//                      skipped; dyn-dims given `T=x:0` on a static capture)
//                      under --verify-numerics
//   pipeline:default   the `default` pipeline under --verify-numerics
//   pipeline:tp2/tp3   `default,tp-split{ranks=N},delay-allreduce` likewise
//   jit                the JIT against the interpreter (moe-run --check) on
//                      the function after `default`, at several symbol values
//   ranks2/ranks3      the JIT on N ranks (the tp pipeline's function)
//                      against the JIT on one (the `default` function)
//
// A failure has a check name and a kind (numerics, error, mismatch, ...;
// the driver adds crash and timeout), which the reducer keeps fixed, and the
// RUN lines that reproduce it with moe-opt / moe-run.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/DimExpr.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moe {

struct SmithFailure {
  std::string check;   ///< e.g. "pass:rms-fusion", "jit", "ranks2"
  std::string kind;    ///< numerics, error, diag-error, mismatch, crash, timeout
  std::string message; ///< what failed (first lines)
  /// Symbol values of a jit/ranks failure, `T=7` (empty otherwise).
  std::string syms;
};

struct SmithCheckOptions {
  uint64_t numericsSeed = 1;
  bool jit = true;   ///< run the jit and ranks checks
  /// Run only this check (the reducer's); empty: all.
  std::string only;
  /// Called with each check's name before it runs (the driver's child
  /// process reports it, so a crash is attributed to its check).
  std::function<void(const std::string &)> progress;
};

/// The names of the checks run on `text` (a module of one function), in
/// order.
std::vector<std::string> smithCheckNames(const std::string &text);

/// Runs the checks on `text`; the first failure, or nullopt.
std::optional<SmithFailure> smithCheck(const std::string &text, const SmithCheckOptions &o);

/// lit RUN lines reproducing `fail` on a file holding the program.
std::vector<std::string> smithRunLines(const std::string &text, const SmithFailure &fail);

} // namespace moe
