//===- moe/Moe.h - The moe library API ---------------------------*- C++ -*-===//
//
// Parse an MoE layer written in moe's text IR, optimise it with a pass
// pipeline, JIT-compile one of its functions to native kernels and run it.
// Every fallible call returns llvm::Error / llvm::Expected (marked
// [[nodiscard]] by LLVM: check each); nothing throws. Every error the API
// returns is a moe::ApiError carrying an ErrorKind, so a caller can branch
// on what went wrong without matching the message (moe::errorKind).
//
//   auto m = moe::parse(text);                        // or parseFile(path)
//   if (!m) return report(m.takeError());
//   if (auto e = moe::runPipeline(*m, "default")) return report(std::move(e));
//   auto exe = moe::jit::compile(*m, "moe_ffn");      // Expected<Executable>
//   if (!exe) return report(exe.takeError());
//   if (auto e = exe->bindParam("gate_inp", {moe::DType::F32, {8, 64}, data}))
//     return report(std::move(e));
//   if (auto e = exe->bindRandomParams(/*seed=*/1))   // the rest, as moe-run
//     return report(std::move(e));
//   std::vector<moe::HostTensor> out;                 // T = 7 from x's shape
//   if (auto e = exe->run({{"x", {moe::DType::F32, {7, 64}, x}}}, out))
//     return report(std::move(e));
//
// Tensors are row-major, outermost dim first, in their stored layout: f32 and
// i32 as such, f16/bf16 as 16-bit patterns, q8_0/q4_0/mxfp4 as GGUF blocks.
//
// Ownership and lifetime. A ModuleHandle owns its module; an Executable owns
// a private copy of its function, so the module may be destroyed after
// compile. A bound param is used in place (no copy): its memory must
// outlive the Executable's runs and stay unchanged while it is bound,
// because a kernel may stream a weight repacked from it, repacked on the
// first run after a binding and reused until the next binding. To change a
// weight's values in place, bind it again. Params from bindRandomParams are
// owned by the Executable; a GGUF file bound with bindGgufParams stays
// mapped as long as the Executable lives. Inputs are read during `run`
// only. Symbols (e.g. T) are given per run, or inferred from the inputs.
//
// Thread safety. `run` (both forms) and the const queries may be called on
// one Executable from several threads at once: each call takes its own
// arena (from a locked free list of a few, allocated when none is free),
// its own error slot and its own outputs; no state of one call is visible
// to another. The Executable's worker pool serves one kernel at a time: a
// call that finds the pool busy runs that kernel on its own thread alone,
// in the chunks the workers would have taken, so its results are the same
// bits (it never waits for the pool, so there is no deadlock); concurrent
// calls cost each other parallelism, not correctness; for independent
// throughput compile one Executable per thread (the object cache makes the
// second compile a load). The weights repacked for the kernels are shared:
// the first runs after a binding that race may each repack (extra work and
// memory once), after which every run reuses one copy. The bind* calls
// change the bound params: they must not run concurrently with `run` or
// with each other (the caller orders them, e.g. bind everything, then
// start the threads). Moving or destroying an Executable while it runs is
// undefined. parse, runPipeline and compile are not made for several
// threads at once: call them from one thread at a time. The diagnostic
// handler is process-wide (setDiagnosticHandler).
//
// Derived and sharded params. The caller binds the params paramNames()
// lists, whole, as a model file holds them. A param a pass derived from
// others (derivedParams(): merge-up-gate's gate_up) is built by the library
// from its bound sources, however they were bound, once, when the last of
// them is bound (again when one is bound again), never per run. Of a split
// function (Options::ranks) each rank takes its shard of every sharded param,
// cut once at bind time as `moe-run --weights` cuts it. Params used whole by
// a rank are used in place; the derived values and the shards are copies the
// Executable owns and frees when the param is bound again or the Executable
// dies. So a split or merged function holds up to one extra copy of its
// sharded and derived weights; the caller's memory is read only while
// binding those, and stays in use (no copy) for the others.
//
// The library is found by CMake with `find_package(moe CONFIG REQUIRED)` and
// linked as `moe::moe`.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_MOE_H
#define MOE_MOE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace moe {

class Module;
class Executable;

enum class DType : uint8_t { F32, F16, BF16, I32, Q8_0, Q4_0, MXFP4 };
/// "f32", "q8_0", ...
const char *dtypeName(DType t);

/// Caller memory seen as a tensor; never copied.
struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
};

/// Caller memory a run writes a result into (run's output-view form);
/// aligned at least to its element (4 bytes for f32/i32, 2 for f16/bf16).
struct MutableTensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  void *data = nullptr;
};

/// A symbol's value for one run, by name (e.g. {"T", 7}).
using SymbolValues = std::vector<std::pair<std::string, int64_t>>;

/// A symbol of a function and its declared range, inclusive.
struct SymbolInfo {
  std::string name;
  int64_t lo = 0, hi = 0;
};

/// An argument's or result's element type and concrete shape for given
/// symbol values, with its declared (symbolic) type, e.g. "tensor<T x 64 x f32>".
struct TensorDesc {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string type;
};

//===----------------------------------------------------------------------===//
// Errors and diagnostics
//===----------------------------------------------------------------------===//

/// What an API error is about.
enum class ErrorKind : uint8_t {
  Parse,   ///< module text that does not parse
  Verify,  ///< a module that parses but breaks a rule (types, shapes, SSA)
  Pass,    ///< a pipeline that does not parse or whose pass failed
  Compile, ///< no such function, or one codegen cannot lower
  Bind,    ///< unknown or missing names: params, inputs, symbols, GGUF tensors, architecture
  Shape,   ///< element types, ranks, shapes and symbol values that do not fit
  Runtime, ///< a kernel's run-time error (an id out of range), allocation
  IO,      ///< a file that cannot be read
};
/// "parse", "verify", "pass", "compile", "bind", "shape", "runtime", "io".
const char *errorKindName(ErrorKind k);

/// The payload of every llvm::Error the API returns: a kind and a message
/// (message(), what llvm::toString gives, unchanged). Handle it with
/// llvm::handleErrors / llvm::handleAllErrors, or read the kind without
/// consuming the error with moe::errorKind.
class ApiError : public llvm::ErrorInfo<ApiError> {
public:
  static char ID;
  ApiError(ErrorKind kind, std::string message);
  ErrorKind kind() const { return k; }
  void log(llvm::raw_ostream &os) const override;
  std::error_code convertToErrorCode() const override;
  /// Also answers for the kind's tag (detail::ErrorKindTag), which is how
  /// errorKind reads the kind of an error it must not consume.
  bool isA(const void *const classID) const override;

private:
  ErrorKind k;
  std::string msg;
};

namespace detail {
/// An identity per kind for llvm::Error::isA (see ApiError::isA).
const void *errorKindID(ErrorKind k);
template <ErrorKind K> struct ErrorKindTag {
  static const void *classID() { return errorKindID(K); }
};
} // namespace detail

/// The kind of a failed API call's error, without consuming it (the error
/// still has to be handled); nullopt for success or an error not from moe.
std::optional<ErrorKind> errorKind(const llvm::Error &e);
template <typename T> std::optional<ErrorKind> errorKind(const llvm::Expected<T> &x) {
  using K = ErrorKind;
  using detail::ErrorKindTag;
  if (x.template errorIsA<ErrorKindTag<K::Parse>>()) return K::Parse;
  if (x.template errorIsA<ErrorKindTag<K::Verify>>()) return K::Verify;
  if (x.template errorIsA<ErrorKindTag<K::Pass>>()) return K::Pass;
  if (x.template errorIsA<ErrorKindTag<K::Compile>>()) return K::Compile;
  if (x.template errorIsA<ErrorKindTag<K::Bind>>()) return K::Bind;
  if (x.template errorIsA<ErrorKindTag<K::Shape>>()) return K::Shape;
  if (x.template errorIsA<ErrorKindTag<K::Runtime>>()) return K::Runtime;
  if (x.template errorIsA<ErrorKindTag<K::IO>>()) return K::IO;
  return std::nullopt;
}

/// Warnings and remarks the library would otherwise print (a corrupt object
/// cache, a pass's remark on a rewrite it refused). Errors are never sent
/// here: they are returned.
enum class DiagnosticSeverity : uint8_t { Warning, Remark };
using DiagnosticHandler = std::function<void(DiagnosticSeverity, const std::string &message)>;
/// Sets the process-wide handler and returns the previous one; an empty
/// handler restores the default, which prints "moe: warning: ..." (or
/// "moe: remark: ...") to standard error. The handler may be called from
/// any thread that calls into the library, one call at a time.
DiagnosticHandler setDiagnosticHandler(DiagnosticHandler h);

/// A result, owning its elements (stored layout, as TensorView).
struct HostTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numElements() const;
  /// Every element as f32 (decoded for f16/bf16, converted for i32).
  std::vector<float> toFloat() const;
};

/// A parsed and verified module.
class ModuleHandle {
public:
  ModuleHandle(ModuleHandle &&) noexcept;
  ModuleHandle &operator=(ModuleHandle &&) noexcept;
  ~ModuleHandle();
  /// The module as text (the printer's canonical form).
  std::string str() const;
  std::vector<std::string> functionNames() const;
  Module &get() { return *m; }
  const Module &get() const { return *m; }

private:
  friend llvm::Expected<ModuleHandle> parse(llvm::StringRef, llvm::StringRef);
  explicit ModuleHandle(std::unique_ptr<Module> m);
  std::unique_ptr<Module> m;
};

/// Parses and verifies module text; diagnostics (file:line:col) in the error.
llvm::Expected<ModuleHandle> parse(llvm::StringRef text, llvm::StringRef bufferName = "<string>");
llvm::Expected<ModuleHandle> parseFile(llvm::StringRef path);

/// Runs a pass pipeline (moe-opt's -p syntax, e.g. "default" or
/// "default,tp-split{ranks=2},delay-allreduce"), verifying after each pass.
llvm::Error runPipeline(ModuleHandle &m, llvm::StringRef pipeline);

namespace jit {

/// The ranks of a split function (tp-split{ranks=N}) when they run in
/// several processes: every rank calls the collectives at the same points
/// with the same counts. Implement it over your own transport, or take
/// mpiWorld()'s.
class Communicator {
public:
  virtual ~Communicator();
  /// This process's rank, in [0, size()), and the rank count.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Collective: data[0, n) becomes the element-wise sum over the ranks,
  /// added in rank order (rank 0 first, starting from +0.0f) so every rank
  /// holds bit-identical sums, equal to the in-process ranks' sums.
  virtual llvm::Error allReduceSum(float *data, size_t n) = 0;
  /// The same for f16/bf16 values (`elem`; 16-bit patterns): summed in f32
  /// as above and rounded once to `elem`. The default widens, calls the f32
  /// overload and rounds.
  virtual llvm::Error allReduceSum(uint16_t *data, size_t n, DType elem);
};

/// MPI_COMM_WORLD as a Communicator, for a program started under
/// `mpirun -np N` (started without mpirun: a world of one). Calls MPI_Init
/// (MPI must not be initialised yet) and MPI_Finalize when destroyed; at
/// most one per process. An error when this libmoe was built without MPI.
class MpiWorld : public Communicator {
public:
  static llvm::Expected<std::unique_ptr<MpiWorld>> init(int *argc, char ***argv);
  ~MpiWorld() override;
  int rank() const override;
  int size() const override;
  llvm::Error allReduceSum(float *data, size_t n) override;
  llvm::Error allReduceSum(uint16_t *data, size_t n, DType elem) override;
  /// Ends every process of the job (MPI_Abort). A rank whose run fails
  /// must not return to a collective the others wait in: print the error,
  /// then call this (as `moe-run --mpi` does).
  [[noreturn]] void abort(int code = 1);

private:
  struct State;
  explicit MpiWorld(std::unique_ptr<State> s);
  std::unique_ptr<State> s;
};

struct Options {
  /// Worker threads (the caller included); 0: every core. A split function
  /// run in this process gives each rank threads / ranks of them (at least 1).
  unsigned threads = 0;
  /// The on-disk object cache (default $MOE_CACHE_DIR, else
  /// $XDG_CACHE_HOME/moe, else ~/.cache/moe).
  bool useCache = true;
  std::string cacheDir;
  /// The rank count the function was split for (tp-split{ranks=N}); 0: the
  /// function's own (1 when it is not split). Any other count is an error.
  unsigned ranks = 0;
  /// Null: run() runs every rank in this process, one thread each, their
  /// all_reduce through shared memory. Set (e.g. an MpiWorld): this process
  /// runs rank comm->rank() of comm->size(), which must be the function's
  /// rank count, and all_reduce goes through `comm`; it must outlive the
  /// Executable. Runs of a split function are queued: one group of ranks
  /// (or, with `comm`, one set of collectives) at a time.
  Communicator *comm = nullptr;
};

/// A param a pass derived from others (merge-up-gate's gate_up_exps from
/// gate_exps and up_exps, split-gate-up's halves): the caller never binds it.
struct DerivedParam {
  std::string name;
  std::vector<std::string> from; ///< the params it is built from, in order
};

/// A compiled function with its bound params.
class Executable {
public:
  Executable(Executable &&) noexcept;
  Executable &operator=(Executable &&) noexcept;
  ~Executable();

  /// Names of the inputs (non-param arguments) and of the params the caller
  /// binds, in order. A derived param is not among them (derivedParams());
  /// a sharded param is, bound whole (the library cuts each rank's shard).
  std::vector<std::string> inputNames() const;
  std::vector<std::string> paramNames() const;
  /// The derived params and what each is built from.
  std::vector<DerivedParam> derivedParams() const;
  /// The rank count of the function (1 when it is not split).
  unsigned ranks() const;
  /// The concrete shape of argument `name` with the given symbol values
  /// (each checked against its range; every symbol of the shape given). A
  /// param's is its whole shape, as the caller binds it.
  llvm::Expected<std::vector<int64_t>> argumentShape(llvm::StringRef name,
                                                     const SymbolValues &symbols) const;

  /// Queries before running (all range-check the symbols they are given).
  /// The function's symbols with their declared ranges, in declaration order
  /// (not a split function's rank-dependent ones, which the library binds).
  std::vector<SymbolInfo> symbols() const;
  /// Argument `name`'s (input or param) element type and shape.
  llvm::Expected<TensorDesc> argumentDesc(llvm::StringRef name,
                                          const SymbolValues &symbols) const;
  /// The number of results, and result `index`'s element type and shape.
  unsigned numResults() const;
  llvm::Expected<TensorDesc> resultDesc(unsigned index, const SymbolValues &symbols) const;
  /// Every symbol's value for a run with these inputs: those given, and the
  /// rest read from the inputs' shapes (a dim that is `S`, `a*S` or `S+b`
  /// determines S). Two inputs that imply different values, or an implied
  /// value different from a given one, or a value outside the symbol's
  /// range, is a Shape error; a symbol given twice or unknown, a Bind
  /// error; a symbol that no input determines and that is not given, a
  /// Bind error. `run` calls this first.
  llvm::Expected<SymbolValues>
  inferSymbols(const std::vector<std::pair<std::string, TensorView>> &inputs,
               const SymbolValues &given = {}) const;

  /// Binds param `name` to caller memory, its whole value (checked against
  /// its declared whole type). A derived param cannot be bound: bind what it
  /// derives from.
  llvm::Error bindParam(llvm::StringRef name, const TensorView &v);
  /// Binds every param not bound yet from a GGUF model file (llama.cpp's
  /// format), as `moe-run --weights`: each param takes the tensor named by
  /// its `gguf = "..."` attribute (what moe-import writes), else the tensor
  /// named like the param; type and dims must match exactly. The file is
  /// memory-mapped and kept open by the Executable; its tensors are used in
  /// place, never copied. A derived param (merge-up-gate's gate_up) is
  /// computed once here from the tensors it derives from. A function that
  /// records the architecture it was imported for (moe-import writes
  /// `attributes {architecture = "qwen3moe"}`) binds only a file whose
  /// `general.architecture` is the same (else a Bind error, nothing bound);
  /// a function without the attribute binds any file whose tensors fit.
  llvm::Error bindGgufParams(llvm::StringRef path);
  /// Binds every param not bound yet to moe-run's seeded generator (values
  /// quantised to the param's type); they are owned by the Executable. The
  /// derived ones are built from the generated sources, so after any
  /// pipeline the results equal `moe-run --seed seed`'s bit for bit.
  llvm::Error bindRandomParams(uint64_t seed);

  /// Runs with the given inputs (by name) and symbol values (those not
  /// given are inferred from the inputs' shapes: inferSymbols); `outputs`
  /// receives the function's results in order, owned. On failure `outputs`
  /// is left empty (never the results of an earlier run). Safe from several
  /// threads at once (see the file comment). A split function runs all its
  /// ranks (or, with Options::comm, this process's rank); the outputs are
  /// rank 0's (every rank's are equal after the all_reduce).
  llvm::Error run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                  std::vector<HostTensor> &outputs, const SymbolValues &symbols = {});
  /// The same, writing the results into caller memory: one view per result,
  /// each checked (dtype and shape) against resultDesc for this run's
  /// symbols before anything runs. The kernels write the results there
  /// directly (no copy), except a result that is an input itself or that
  /// the function returns twice, which is copied in. The views must not
  /// overlap each other or the inputs and params. On failure their contents
  /// are unspecified.
  llvm::Error run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                  llvm::ArrayRef<MutableTensorView> outputs, const SymbolValues &symbols = {});

  /// Compile time of this Executable, and whether it came from the cache
  /// (for compileModule: of the whole module's compile).
  double compileMs() const;
  bool fromCache() const;
  /// Kernel definitions not compiled because an identical one was (over the
  /// functions compiled together: compileModule's blocks, a function and its
  /// variants).
  unsigned kernelsShared() const;
  /// The object cache key of the compiled kernels: the same as `moe-run`'s
  /// for the same function and target (codegen::ObjectCache::keyOf is the
  /// one place it is computed), so either front end hits the other's cache.
  std::string cacheKey() const;

private:
  friend llvm::Expected<Executable> compile(const ModuleHandle &, llvm::StringRef,
                                            const Options &);
  friend llvm::Expected<std::vector<Executable>> compileModule(const ModuleHandle &,
                                                               const Options &);
  struct Impl;
  friend struct ImplAccess;
  explicit Executable(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

/// Compiles `function` of `m` (the module may be destroyed afterwards).
llvm::Expected<Executable> compile(const ModuleHandle &m, llvm::StringRef function,
                                   const Options &opts = {});

/// Compiles every function of `m` together, one Executable per function in
/// the module's order (ModuleHandle::functionNames()): a whole model's
/// blocks, as `moe-import --all` writes them. Kernels identical in content
/// are compiled once and shared (48 blocks of one shape compile the kernels
/// of one), the module's kernels are one object-cache entry, and on a miss
/// they are compiled on every core. `opts` applies to each function as in
/// compile() (Options::ranks: 0, or the rank count of every function). The
/// Executables share one JIT and the worker pool of each thread count;
/// each binds its own params and may be run and destroyed on its own.
llvm::Expected<std::vector<Executable>> compileModule(const ModuleHandle &m,
                                                      const Options &opts = {});

} // namespace jit
} // namespace moe

#endif // MOE_MOE_H
