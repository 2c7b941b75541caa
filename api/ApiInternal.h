//===- ApiInternal.h - What the library API's files share --------*- C++ -*-===//
//
// The Executable's internals (Impl), the error helpers that give every error
// leaving the API its kind, and the conversions between the API's DType and
// the IR's ElemType. Private to api/: Moe.cpp (errors, diagnostics, modules,
// compile, names), Bind.cpp (params, derived params, shards), Run.cpp
// (queries, symbols, runs), Mpi.cpp (communicators).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "moe/Moe.h"
#include "ir/Error.h"

#include "ir/ParamDerive.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/Formats.h"
#include "runtime/GgufSource.h"
#include "runtime/InProcessRanks.h"
#include "runtime/Interpreter.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/Random.h"
#include "ir/Spmd.h"

#include "fmt/format.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <mutex>
#include <thread>

using namespace moe;

namespace moe::api {

template <typename... Args>
llvm::Error apiErr(ErrorKind k, fmt::format_string<Args...> f, Args &&...args) {
  return llvm::make_error<ApiError>(k, fmt::format(f, std::forward<Args>(args)...));
}
inline llvm::Error apiErr(ErrorKind k, std::string message) {
  return llvm::make_error<ApiError>(k, std::move(message));
}
/// `e` as an ApiError: of kind `k` unless it already is one (an inner
/// entry point knew better); success stays success.
inline llvm::Error withKind(ErrorKind k, llvm::Error e) {
  if (!e)
    return e;
  if (e.isA<ApiError>())
    return e;
  return apiErr(k, llvm::toString(std::move(e)));
}
template <typename T> llvm::Expected<T> withKind(ErrorKind k, llvm::Expected<T> x) {
  if (!x)
    return withKind(k, x.takeError());
  return x;
}

/// Sends a warning or remark to the caller's handler, or to standard error.
void diagnose(DiagnosticSeverity s, const std::string &message);
ElemType toElem(DType t);
DType toDType(ElemType t);
/// `T = 5` for the symbols of `t`'s dims, each with where its value came
/// from when `from` knows (`T = 7 from %x`).
std::string bindingsOf(const TensorType &t, const SymbolBindings &syms,
                       const llvm::StringMap<std::string> *from);
/// Checks a view against an argument's type (or `type`): element type,
/// rank, and every dim that is static (all of them when `syms` binds the
/// symbols; `from` says where each symbol's value came from). Shape errors
/// say the shape expected: `expected [5, 64] (T x 64 with T = 5), got [7, 64]`.
llvm::Error checkView(const Value &a, const TensorView &v, const SymbolBindings *syms,
                      const llvm::StringMap<std::string> *from = nullptr,
                      const TensorType *type = nullptr);

/// A jit::Communicator as the runtime's Communicator.
class CommAdapter : public moe::Communicator {
public:
  explicit CommAdapter(jit::Communicator &c) : c(c) {}
  int rank() const override { return c.rank(); }
  int size() const override { return c.size(); }
  llvm::Error allReduceSum(float *data, size_t n) override { return c.allReduceSum(data, n); }
  llvm::Error allReduceSum(uint16_t *data, size_t n, ElemType elem) override {
    return c.allReduceSum(data, n, toDType(elem));
  }

private:
  jit::Communicator &c;
};

} // namespace moe::api

struct jit::Executable::Impl {
  std::unique_ptr<moe::Executable> exe;
  /// How each param the caller binds is bound, per argument (None for
  /// inputs, derived params and params not bound yet).
  struct Source {
    enum Kind { None, Memory, Random } kind = None;
    const void *data = nullptr; ///< Memory: the whole value, stored layout
    uint64_t seed = 0;          ///< Random
  };
  std::vector<Source> sources;
  /// The function's rank count; the ranks this process runs (all of them,
  /// or Options::comm's one).
  int ranks = 1;
  std::vector<int> myRanks{0};
  /// What each of myRanks is given: ptrs[i][k] is argument k of rank
  /// myRanks[i] (params only; null: not bound), kept alive by keep[i][k]
  /// (a shard, a derived value, a generated param, and the Binder that
  /// built them). Built when a param is bound, never per run.
  std::vector<std::vector<const void *>> ptrs;
  std::vector<std::vector<std::shared_ptr<void>>> keep;
  std::vector<std::shared_ptr<const gguf::GgufFile>> files; ///< mapped models
  /// Options::comm as the runtime sees it (null: in-process ranks).
  std::unique_ptr<api::CommAdapter> comm;
  /// Ranks 1.. of an in-process split run on these (rank 0 on the
  /// Executable's own pool). Runs of a split function are queued, one at
  /// a time (they share these pools, or the communicator's collectives).
  std::vector<std::unique_ptr<WorkerPool>> rankPools;
  std::mutex ranksMutex;
  /// Bumped by every binding: weights repacked for the kernels are reused
  /// between two bindings (moe::RunOptions::paramsVersion).
  uint64_t paramsVersion = moe::Executable::newParamsVersion();

  const Function &function() const { return exe->function(); }
  /// Whether `a` can be given to the kernels: bound, or derived from
  /// params that can.
  bool ready(const Value &a) const;
  /// The first param `a` needs that is not bound: itself, or a source.
  const Value *firstUnbound(const Value &a) const;
  bool isBound(const Value &a) const { return sources[a.getArgIndex()].kind != Source::None; }
  /// The arguments of a run: for each rank this process runs, its params
  /// and the inputs (the same on every rank), with its symbols (the
  /// caller's, those inferred from the inputs, and the rank's).
  struct PreparedRun {
    std::vector<std::vector<const void *>> args;
    std::vector<SymbolBindings> syms;
  };
  llvm::Expected<PreparedRun>
  prepareRun(const std::vector<std::pair<std::string, TensorView>> &inputs,
             const SymbolValues &symbols) const;
  /// Runs every rank this process runs; rank 0's results (or this
  /// process's rank's, with a communicator). `ro`: rank 0's options (its
  /// output views); the other ranks' results are their own.
  llvm::Expected<std::vector<Tensor>> runRanks(const PreparedRun &p, RunOptions ro);
  /// Rebuilds what the ranks are given for the params named in `changed`
  /// and every param derived from them.
  llvm::Error prepare(const std::vector<const Value *> &changed);
};

namespace moe::jit {
/// The internals of an Executable, for the API's files.
struct ImplAccess {
  static Executable::Impl &of(Executable &e) { return *e.impl; }
  /// The Executable of `f`, compiled into `exe`, run as `opts` says: on
  /// `split` ranks (those of this process: all, or opts.comm's), each rank
  /// after the first with a pool of `perRank` threads.
  static Executable wrap(const Function &f, const Options &opts, int split, unsigned perRank,
                         std::unique_ptr<moe::Executable> exe);
};
} // namespace moe::jit

