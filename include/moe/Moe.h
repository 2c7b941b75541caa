//===- moe/Moe.h - The moe library API ---------------------------*- C++ -*-===//
//
// Parse an MoE layer written in moe's text IR, optimise it with a pass
// pipeline, JIT-compile one of its functions to native kernels and run it.
// Every fallible call returns llvm::Error / llvm::Expected; nothing throws.
//
//   auto m = moe::parse(text);                       // or parseFile(path)
//   if (auto e = moe::runPipeline(*m, "default")) ...
//   auto exe = moe::jit::compile(*m, "moe_ffn", {}); // Expected<Executable>
//   exe->bindParam("gate_inp", {moe::DType::F32, {8, 64}, data});
//   exe->bindRandomParams(/*seed=*/1);               // the rest, as moe-run
//   std::vector<moe::HostTensor> out;
//   exe->run({{"x", {moe::DType::F32, {7, 64}, x}}}, out, {{"T", 7}});
//
// Tensors are row-major, outermost dim first, in their stored layout: f32 and
// i32 as such, f16/bf16 as 16-bit patterns, q8_0/q4_0/mxfp4 as GGUF blocks.
// A bound param is used in place (no copy): its memory must outlive the
// Executable's runs and stay unchanged while it is bound, because a kernel
// may stream a weight repacked from it, repacked on the first run after a
// binding and reused until the next binding. To change a weight's values in
// place, bind it again. Symbols (e.g. T) are bound per run.
//
// The library is found by CMake with `find_package(moe CONFIG REQUIRED)` and
// linked as `moe::moe`.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_MOE_H
#define MOE_MOE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
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

struct Options {
  /// Worker threads (the caller included); 0: every core.
  unsigned threads = 0;
  /// The on-disk object cache (default $XDG_CACHE_HOME/moe).
  bool useCache = true;
  std::string cacheDir;
};

/// A compiled function with its bound params.
class Executable {
public:
  Executable(Executable &&) noexcept;
  Executable &operator=(Executable &&) noexcept;
  ~Executable();

  /// Names of the inputs (non-param arguments) and params, in order.
  std::vector<std::string> inputNames() const;
  std::vector<std::string> paramNames() const;
  /// The concrete shape of argument `name` with the given symbol values.
  llvm::Expected<std::vector<int64_t>>
  argumentShape(llvm::StringRef name,
                const std::vector<std::pair<std::string, int64_t>> &symbols) const;

  /// Binds param `name` to caller memory (checked against its declared type
  /// for every symbol-free dim; symbolic dims are checked at run time).
  llvm::Error bindParam(llvm::StringRef name, const TensorView &v);
  /// Binds every param not bound yet from a GGUF model file (llama.cpp's
  /// format), as `moe-run --weights`: each param takes the tensor named by
  /// its `gguf = "..."` attribute (what moe-import writes), else the tensor
  /// named like the param; type and dims must match exactly. The file is
  /// memory-mapped and kept open by the Executable; its tensors are used in
  /// place, never copied. A derived param (merge-up-gate's gate_up) is
  /// computed once here from the tensors it derives from.
  llvm::Error bindGgufParams(llvm::StringRef path);
  /// Binds every param not bound yet to moe-run's seeded generator (values
  /// quantised to the param's type); they are owned by the Executable.
  llvm::Error bindRandomParams(uint64_t seed);

  /// Runs with the given inputs (by name) and symbol values; `outputs`
  /// receives the function's results in order.
  llvm::Error run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                  std::vector<HostTensor> &outputs,
                  const std::vector<std::pair<std::string, int64_t>> &symbols);

  /// Compile time of this Executable, and whether it came from the cache.
  double compileMs() const;
  bool fromCache() const;

private:
  friend llvm::Expected<Executable> compile(const ModuleHandle &, llvm::StringRef,
                                            const Options &);
  struct Impl;
  friend struct ImplAccess;
  explicit Executable(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

/// Compiles `function` of `m` (the module may be destroyed afterwards).
llvm::Expected<Executable> compile(const ModuleHandle &m, llvm::StringRef function,
                                   const Options &opts = {});

} // namespace jit
} // namespace moe

#endif // MOE_MOE_H
