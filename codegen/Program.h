//===- Program.h - A function lowered to kernels ----------------*- C++ -*-===//
//
// What codegen hands the runtime: an LLVM module of kernels plus the schedule
// that runs them. Every kernel has one ABI,
//
//   i32 @kernel(ptr %bufs, ptr %syms, i64 %begin, i64 %end, ptr %rt)
//
// `bufs` is the table of buffer base pointers (indexed by buffer id, below),
// `syms` the values of the function's symbols in declaration order, and
// [begin, end) a range of the step's parallel items: the runtime splits
// [0, extent) among its threads, so a kernel never synchronises. A kernel
// returns 0, or 1 after reporting a run-time error (an id out of range)
// through `moe_rt_error(rt, site, pos, id, limit)`; the runtime turns that
// into a message naming the op (ErrorSite) whose index was bad.
//
// Buffers are the values that live in memory: arguments (caller memory),
// materialised intermediates and results (in the runtime's memory plan), and
// scratch (the routing tables of matmul_id). Values fused into a consumer
// (elementwise chains, views, gathers) have no buffer at all.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Target.h"
#include "ir/IR.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moe::codegen {

enum class BufferKind {
  Argument, ///< function argument `argIndex`, bound by the caller
  Temp,     ///< an intermediate, placed by the memory plan
  Scratch,  ///< kernel scratch of `scratchBytes`, placed by the memory plan
  /// Argument `argIndex` (a weight) repacked by a prepare step into the
  /// layout a kernel streams, `scratchBytes` long. Not in the memory plan:
  /// the runtime keeps it across runs while the argument's memory and the
  /// symbol values are the same, so the prepare step runs once per binding.
  Packed,
};

struct BufferDesc {
  BufferKind kind = BufferKind::Temp;
  const Value *value = nullptr; ///< Argument and Temp
  unsigned argIndex = 0;
  ElemType elem = ElemType::F32;
  Shape dims;             ///< Argument and Temp: the value's type
  DimExpr scratchBytes;   ///< Scratch
  bool isResult = false;  ///< returned: never reused, outlives the run
  std::string name;       ///< `%up`, `route(%ids)`
};

enum class StepKind {
  Kernel,    ///< call `symbol` over [0, extent)
  AllReduce, ///< sum `buffer` (f32) over the ranks, in place
};

struct Step {
  StepKind kind = StepKind::Kernel;
  /// Fills the Packed buffer `buffer` from its argument: skipped when the
  /// runtime still holds that buffer for the same argument and symbols.
  /// Its items are expert-major: the first factor of `extent` is the
  /// weight's expert count (1 for matmul), and the items of expert e read
  /// only expert e's slice of the argument (so the runtime may pack a
  /// weight a few experts at a time, Executable::packWeights).
  bool prepare = false;
  std::string symbol;
  /// What a profile calls the kernel: `matmul_id %up` for an op's own
  /// kernel, the buffer it fills for a helper kernel (`route(%ids)`,
  /// `q8_0(%x3)`, `packed(%up_exps)`), `all_reduce %down (sum over ranks)`
  /// for the communication of an AllReduce step.
  std::string label;
  /// The op's own kernel (not a helper that routes, quantises or packs for
  /// it): a profile counts the op's FLOPs and weight bytes on this step.
  bool main = true;
  const Operation *op = nullptr; ///< the op it computes, for messages
  /// Parallel items: the product of ceil(dim / divisor) over the factors.
  std::vector<std::pair<DimExpr, int64_t>> extent;
  int64_t grain = 1; ///< items worth one task
  std::vector<unsigned> reads, writes;
  unsigned buffer = 0; ///< AllReduce; the Packed buffer of a prepare step
};

/// Where a kernel may stop with an index out of range; `moe_rt_error`'s
/// `site` argument indexes Program::errorSites.
struct ErrorSite {
  enum class Kind { ExpertId, BiasId, GatherIndex, DivByZero } kind;
  const Operation *op; ///< the matmul_id, add_id, gather or i32 div
};

struct Program {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  std::vector<BufferDesc> buffers;
  std::vector<Step> steps;
  /// The buffer of each function result, in `return` order.
  std::vector<unsigned> results;
  /// The symbols, in the order of the kernels' `syms` array.
  std::vector<std::string> symbols;
  std::vector<ErrorSite> errorSites;
};

struct LowerOptions {
  /// Prefix of every kernel's symbol name (keeps names unique per module).
  std::string prefix = "moe";
  /// The CPU the kernels are specialised to (Jit::target()); unset: the host.
  std::optional<Target> target;
  /// Lower into this module (and its context), beside other functions'
  /// kernels, instead of a new one: the Program's context and module are
  /// then null. The prefixes of the functions sharing it must differ.
  llvm::Module *into = nullptr;
};

/// Lowers a verified function to kernels. Fails (naming the op) for what the
/// JIT does not support, e.g. an all_reduce of a non-f32 value.
llvm::Expected<Program> lowerFunction(const Function &f, const LowerOptions &opts = {});

/// `p`, lowered from `from`, as the program of `to`: the same steps and
/// kernels, its pointers (buffers' values, steps' and error sites' ops) moved
/// to `to`'s. `to` must have `from`'s arguments and ops in the same order,
/// with the same kinds, types and attributes (codegenKey equal); the copy
/// has no module.
Program copyProgram(const Program &p, const Function &from, const Function &to);

/// What lowering reads of `f`: its text with the function's name and the
/// params' `gguf` attributes (tensor names, which only the binder reads)
/// left out. Functions with equal keys lower to the same program (the
/// printer and parser round-trip, so equal text is an equal function).
std::string codegenKey(const Function &f);

} // namespace moe::codegen
