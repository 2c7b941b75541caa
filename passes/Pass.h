//===- Pass.h - Passes, the registry and the pass manager -------*- C++ -*-===//
//
// A pass rewrites one function at a time along use-def chains. Passes are
// declared once in Passes.def (name, summary, options); pipelines are text
// (`cse,dce,tp-split{ranks=2}`). The pass manager verifies after each pass
// (--verify-each), prints IR, times passes, collects statistics, and offers
// instrumentation hooks that tools fill (e.g. --verify-numerics with the
// interpreter, which lives in a later layer).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"
#include "ir/IR.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

namespace moe {

class Pass;
class TargetDesc;

/// Why a pass leaves something as it is, as MLIR's notifyMatchFailure: the
/// text of the remark (or diagnostic) the pass emits; none when the rewrite
/// is legal. Every pass's legality check returns one and is named
/// `whyNot<Rewrite>` (whyNotFuse, whyNotMerge, whyNotSplit, ...), so it is
/// found by one name; the caller adds the prefix naming the pass's verdict
/// ("not fused into rms_norm: ") and emits it.
using Refusal = std::optional<std::string>;

/// A counter a pass reports under --pass-statistics.
struct Statistic {
  Statistic(Pass *owner, const char *name, const char *desc);
  Statistic &operator++() { ++value; return *this; }
  Statistic &operator+=(int64_t v) { value += v; return *this; }
  const char *name, *desc;
  int64_t value = 0;
};

/// One declared option of a pass.
struct PassOptionSpec {
  std::string name, kind, dflt, desc;
};

/// Parsed option values (`{ranks=2}`), checked against the declared specs.
class PassOptions {
public:
  llvm::StringMap<std::string> values;
  /// Every `key=value` in the order given. Only a key that the map option
  /// (`*`) accepts may repeat (`dyn-dims{T=x:0,T=logits:0}`); `values` then
  /// holds its last value.
  std::vector<std::pair<std::string, std::string>> entries;
  int64_t getInt(llvm::StringRef n, int64_t dflt) const;
  bool getBool(llvm::StringRef n, bool dflt) const;
  std::string getString(llvm::StringRef n, llvm::StringRef dflt) const;
};

/// What a pass sees besides the function.
struct PassContext {
  DiagEngine &diag;
  Module &module;
  const TargetDesc *target = nullptr;
};

class Pass {
public:
  virtual ~Pass() = default;
  llvm::StringRef getName() const { return name; }
  /// Rewrites `f`; returns whether anything changed. An error stops the
  /// pipeline (reserved for internal failures: a pass that cannot do its job
  /// on some input emits a diagnostic on that op and leaves the IR valid).
  virtual llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) = 0;

  /// The relative error --verify-numerics allows on this pass's results, for
  /// a pass that changes numerics on purpose by a bound it states (e.g.
  /// quantize-activations); 0 for an exact rewrite (the tool's tolerance).
  virtual double numericTolerance() const { return 0; }

  const std::vector<Statistic *> &getStatistics() const { return stats; }
  /// The pipeline text of this pass with its options.
  std::string describe() const;
  /// Set by the registry when the pass is created from a pipeline.
  void configure(std::string n, PassOptions o) {
    name = std::move(n);
    options = std::move(o);
  }

private:
  friend struct Statistic;
  std::string name;
  PassOptions options;
  std::vector<Statistic *> stats;

protected:
  const PassOptions &getOptions() const { return options; }
};

struct PassInfo {
  std::string name, summary;
  std::vector<PassOptionSpec> options;
  std::unique_ptr<Pass> (*factory)(const PassOptions &);
};

struct PipelineInfo {
  std::string name, passes, summary;
};

class PassRegistry {
public:
  static llvm::ArrayRef<PassInfo> passes();
  static llvm::ArrayRef<PipelineInfo> pipelines();
  static const PassInfo *lookup(llvm::StringRef name);
  static const PipelineInfo *lookupPipeline(llvm::StringRef name);
  /// Parses `cse,dce,tp-split{ranks=2}` into passes; named pipelines expand.
  static llvm::Expected<std::vector<std::unique_ptr<Pass>>> parsePipeline(llvm::StringRef text);
  /// --list-passes text.
  static void printList(llvm::raw_ostream &os);
};

/// Hooks around each pass (the tools' --verify-numerics is one).
class PassInstrumentation {
public:
  virtual ~PassInstrumentation() = default;
  virtual void beforePass(const Pass &, const Function &) {}
  /// An error fails the pipeline with the pass's name.
  virtual llvm::Error afterPass(const Pass &, const Function &) { return llvm::Error::success(); }
};

class PassManager {
public:
  struct Options {
    bool verifyEach = true;
    bool printAfterAll = false;
    bool printAfterChange = false;
    bool timing = false;
    bool statistics = false;
  };
  PassManager() = default;
  explicit PassManager(Options o) : opts(o) {}

  void addPass(std::unique_ptr<Pass> p) { passes.push_back(std::move(p)); }
  llvm::Error addPipeline(llvm::StringRef text);
  /// Drops every pass called `name` added so far (also from expanded named
  /// pipelines): `--no-quantize-activations` keeps `default` exact.
  void removePasses(llvm::StringRef name);
  void addInstrumentation(std::unique_ptr<PassInstrumentation> i) {
    instrumentations.push_back(std::move(i));
  }
  void setTarget(const TargetDesc *t) { target = t; }

  /// Runs every pass over every function. Diagnostics go to `diag`; IR
  /// printing, timing and statistics go to `out` (stderr by default).
  llvm::Error run(Module &m, DiagEngine &diag);
  void setOutput(llvm::raw_ostream *os) { out = os; }

  /// Statistics and timing reports (also printed by run() when enabled).
  void printStatistics(llvm::raw_ostream &os) const;
  void printTiming(llvm::raw_ostream &os) const;
  const std::vector<std::unique_ptr<Pass>> &getPasses() const { return passes; }

private:
  Options opts;
  std::vector<std::unique_ptr<Pass>> passes;
  std::vector<std::unique_ptr<PassInstrumentation>> instrumentations;
  std::vector<double> seconds;
  const TargetDesc *target = nullptr;
  llvm::raw_ostream *out = nullptr;
};

// Factories, one per PASS entry.
#define PASS(NAME, FACTORY, SUMMARY, OPTIONS)                                  \
  std::unique_ptr<Pass> FACTORY(const PassOptions &);
#include "passes/Passes.def"

} // namespace moe
