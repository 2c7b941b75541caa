//===- RunMain.cpp - The moe-run driver -----------------------------------===//
//
// moe-run FILE [-p pipeline] [--sym T=7] [--input x=x.npy] [--param w=w.npy]
//         [--weights model.gguf] [--seed N] [--ranks N] [--output DIR] [--mpi]
//         [--engine=jit|interp] [--check] [--time] [--profile] [--repeat N]
//         [--threads N]
//         [--weight-type=TYPE] [--no-cache] [--cache-dir DIR]
//
// The JIT (runtime/Executable.h) runs by default; --engine=interp (or
// --interp) runs the reference interpreter instead. --check runs both on the
// same bound arguments and fails, naming each output's max abs error and its
// error max|jit - interp| / max(max|interp|, 1), when that exceeds the
// tolerance of the output's type (the rule and table of runtime/Compare.h). --weight-type
// retypes every param used as a matmul/matmul_id weight before the pipeline
// runs, so the seeded weights are quantised to that type and any example
// runs in any weight type.
//
// The pipeline runs first; then symbols, inputs and params are bound: from
// .npy files when given, else params from the GGUF file of --weights (the
// tensor named by the param's gguf attribute, or by the param's name; type and
// shape must match, runtime/GgufSource.h), else from the seeded generator (a
// function of the seed and the argument's name, so two pipelines over one file
// see the same data). Params are given whole; derived params are computed from their
// sources and each rank takes its shard. Exit code 0 on success, 1 on error.
//
// --mpi (under `mpirun -np N`): one rank per process, the MPI world size is
// the rank count. Every process reads the same module (rank 0 reads FILE or
// standard input and sends the text to the others), runs the pipeline, binds
// the same whole params and takes its shard; all_reduce goes through
// MpiCommunicator (sums in rank order, so the results equal --ranks N bit
// for bit). Only rank 0 prints summaries and writes --output. An error on any
// rank is printed naming the rank, then MPI_Abort ends the whole job, so no
// rank is left waiting in a collective and mpirun exits non-zero.
//
// Timing (--time, --repeat N). The arguments are bound once (timed apart:
// `bind:`), then the JIT runs N times. With ranks, each rank's runs are timed
// by the rank itself: under --mpi every run starts after a barrier and the
// run's time is the slowest rank's; in-process the ranks start together and
// the run's time is the wall time of all of them. `run:` is the median over
// the runs (and the minimum), then one `run rank R:` line per rank (rank 0
// gathers the others' times over MPI). --profile times every kernel
// (runtime/Profile.h) and prints the table after the run: totals over the
// runs and summed over the ranks.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/RunMain.h"
#include "ir/Error.h"
#include "tools/lib/Fail.h"
#include "tools/lib/RunArgs.h"
#include "tools/lib/RunReport.h"
#include "tools/lib/ToolCommon.h"

#include "ir/ParamDerive.h"
#include "ir/Parser.h"
#include "ir/Spmd.h"
#include "ir/Verifier.h"
#include "runtime/Binder.h"
#include "runtime/Compare.h"
#include "runtime/Executable.h"
#include "runtime/GgufSource.h"
#include "runtime/InProcessRanks.h"
#include "runtime/Interpreter.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/Profile.h"
#include "runtime/Random.h"
#include "runtime/WeightType.h"

#include "fmt/format.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sys/resource.h>
#include <unistd.h>
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace moe;
namespace cl = llvm::cl;

namespace {
enum class Engine { Jit, Interp };

struct RunFlags {
  cl::OptionCategory cat{"moe-run options"};
  cl::opt<std::string> input{cl::Positional, cl::desc("<input .moe file, or - for stdin>"),
                             cl::Required, cl::cat(cat)};
  cl::opt<std::string> pipeline{"p", cl::desc("Pass pipeline to run first"),
                                cl::value_desc("pipeline"), cl::cat(cat)};
  cl::opt<bool> noQuantizeActivations{
      "no-quantize-activations",
      cl::desc("Leave quantize-activations out of the pipeline (also out of `default`): "
               "matmuls keep exact f32 activations"),
      cl::cat(cat)};
  cl::list<std::string> syms{"sym", cl::desc("Bind a symbol: --sym T=7 (repeatable)"),
                             cl::value_desc("NAME=VALUE"), cl::cat(cat)};
  cl::list<std::string> inputs{"input", cl::desc("An input from .npy: --input x=x.npy"),
                               cl::value_desc("NAME=FILE"), cl::cat(cat)};
  cl::list<std::string> params{"param", cl::desc("A whole param from .npy: --param w=w.npy"),
                               cl::value_desc("NAME=FILE"), cl::cat(cat)};
  cl::opt<std::string> weights{"weights", cl::desc("Bind the params not given by --param from "
                                                    "this GGUF file"),
                               cl::value_desc("FILE"), cl::cat(cat)};
  cl::opt<uint64_t> seed{"seed", cl::desc("Seed of the generated inputs and params"),
                         cl::init(1), cl::cat(cat)};
  cl::opt<Engine> engine{"engine", cl::desc("Execution engine"), cl::init(Engine::Jit),
                         cl::values(clEnumValN(Engine::Jit, "jit",
                                               "native kernels through LLVM ORC (default)"),
                                    clEnumValN(Engine::Interp, "interp",
                                               "the reference interpreter")),
                         cl::cat(cat)};
  cl::opt<bool> check{"check",
                      cl::desc("Also run the interpreter; fail if an output's max|jit-interp| / "
                               "max(max|interp|, 1) exceeds its type's tolerance (f32 1e-4, "
                               "f16 2e-3, bf16 1.6e-2, i32 exact)"),
                      cl::cat(cat)};
  cl::opt<bool> time{"time", cl::desc("Print compile, bind and run times (ms; the run alone, "
                                      "and each rank's with ranks)"),
                     cl::cat(cat)};
  cl::opt<unsigned> repeat{"repeat", cl::desc("Run the JIT N times on the same bound arguments: "
                                              "--time reports the median and minimum, "
                                              "--profile the totals"),
                           cl::init(1), cl::cat(cat)};
  cl::opt<bool> profile{"profile",
                        cl::desc("After the run, one line per JIT kernel sorted by time: calls, "
                                 "total ms, % of the run, GFLOP/s, GB/s of weights read (totals "
                                 "over the --repeat runs, summed over the ranks)"),
                        cl::cat(cat)};
  cl::opt<bool> packAtBind{
      "pack-at-bind",
      cl::desc("Repack the weights the JIT's kernels stream when binding, letting go of the "
               "memory only the packed copies are read from (mapped GGUF pages, shards, the "
               "merged gate_up never built whole); =false: repack on the first run and keep "
               "both (default true)"),
      cl::init(true), cl::cat(cat)};
  cl::opt<unsigned> threads{"threads", cl::desc("JIT worker threads (default: every core)"),
                            cl::init(0), cl::cat(cat)};
  cl::opt<std::string> weightType{"weight-type",
                                  cl::desc("Retype matmul/matmul_id weight params "
                                           "(f32|f16|bf16|q8_0|q4_0|mxfp4)"),
                                  cl::value_desc("TYPE"), cl::cat(cat)};
  cl::opt<bool> noCache{"no-cache", cl::desc("Do not use the JIT's object cache"), cl::cat(cat)};
  cl::opt<std::string> cacheDir{"cache-dir", cl::desc("The JIT's object cache directory "
                                                      "(default $XDG_CACHE_HOME/moe)"),
                                cl::value_desc("DIR"), cl::cat(cat)};
  cl::opt<bool> perf{"perf", cl::desc("Register JIT code with perf and gdb"), cl::cat(cat)};
  cl::opt<std::string> cpu{"cpu", cl::desc("The CPU the JIT generates code for (default: the host): "
                                           "an LLVM CPU name, e.g. x86-64-v3 (AVX2), x86-64-v4 "
                                           "(AVX-512 without VNNI), znver2, sapphirerapids"),
                           cl::value_desc("NAME"), cl::cat(cat)};
  cl::opt<bool> interp{"interp", cl::desc("Use the reference interpreter (= --engine=interp)"),
                       cl::cat(cat)};
  cl::opt<std::string> function{"function", cl::desc("The function to run (default: the only "
                                                     "or first one)"),
                                cl::cat(cat)};
  cl::opt<int> ranks{"ranks", cl::desc("Rank count: must equal the function's (tp-split{ranks=N})"),
                     cl::init(0), cl::cat(cat)};
  cl::opt<std::string> output{"output", cl::desc("Write result0.npy, result1.npy, ... here"),
                              cl::value_desc("DIR"), cl::cat(cat)};
  cl::opt<bool> mpi{"mpi", cl::desc("One rank per MPI process: run under mpirun -np N, N = the "
                                    "rank count; rank 0 prints and writes the results"),
                    cl::cat(cat)};
  NumericsFlags numerics{cat};
};

/// The MPI session under --mpi (errors then name the rank and end the job).
MpiSession *mpiSession = nullptr;

/// The tools' fail(); under --mpi the message names the rank, and the whole
/// job ends so no rank is left waiting in a collective.
int failRun(llvm::Error e) {
  if (!mpiSession)
    return moe::fail("moe-run", std::move(e));
  llvm::outs().flush();
  moe::fail("moe-run", err(fmt::format("rank {}: {}", mpiSession->rank(),
                                       llvm::toString(std::move(e)))));
  mpiSession->abort(1);
  return 1;
}

/// FILE (or standard input). Under --mpi only rank 0 reads it (mpirun gives
/// standard input to rank 0 alone) and sends the text to the others.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> readModuleText(const std::string &name) {
  std::unique_ptr<llvm::MemoryBuffer> buf;
  if (!mpiSession || mpiSession->rank() == 0) {
    auto b = llvm::MemoryBuffer::getFileOrSTDIN(name, /*IsText=*/true);
    if (!b)
      return err(fmt::format("cannot read '{}': {}", name, b.getError().message()));
    buf = std::move(*b);
  }
  if (!mpiSession || mpiSession->size() == 1)
    return buf;
  std::string text = buf ? buf->getBuffer().str() : std::string();
  std::string id = buf ? buf->getBufferIdentifier().str() : std::string();
  if (auto e = mpiSession->broadcast(text))
    return e;
  if (auto e = mpiSession->broadcast(id))
    return e;
  return llvm::MemoryBuffer::getMemBufferCopy(text, id);
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}


/// Rank 0: every rank's run times and profile, gathered; the others send.
llvm::Error gatherRankTimes(MpiSession &session, const std::vector<double> &ms,
                            const Profile &mine, RunResults &r) {
  std::string msg;
  for (double x : ms)
    msg += fmt::format("{:.17g} ", x);
  msg += "\n" + mine.serialize();
  auto all = session.gather(msg);
  if (!all)
    return all.takeError();
  for (size_t q = 0; q < all->size(); ++q) {
    auto [times, prof] = llvm::StringRef((*all)[q]).split('\n');
    llvm::SmallVector<llvm::StringRef> fields;
    times.split(fields, ' ', -1, /*KeepEmpty=*/false);
    std::vector<double> rank;
    for (llvm::StringRef f : fields) {
      double x;
      if (f.getAsDouble(x))
        return err(fmt::format("rank {} sent a malformed run time '{}'", q, f.str()));
      rank.push_back(x);
    }
    if (rank.size() != ms.size())
      return err(fmt::format("rank {} ran {} times, rank 0 {}", q, rank.size(), ms.size()));
    auto p = Profile::deserialize(prof);
    if (!p)
      return p.takeError();
    r.profile.merge(*p);
    r.rankMs.push_back(std::move(rank));
  }
  r.runMs.assign(ms.size(), 0); // each run: the slowest rank's time
  for (auto &rank : r.rankMs)
    for (size_t i = 0; i < ms.size(); ++i)
      r.runMs[i] = std::max(r.runMs[i], rank[i]);
  return llvm::Error::success();
}

/// This process's rank of `f` under --mpi, all_reduce over MPI; with the
/// JIT when `exe` is given, then `repeat` times, each run after a barrier,
/// timed, and the times (and --profile) gathered into `*r` on rank 0.
llvm::Expected<std::vector<Tensor>> runMpiRank(const Function &f, Executable *exe,
                                               Binder &binder, MpiSession &session,
                                               RunResults *r = nullptr, unsigned repeat = 1,
                                               bool profile = false, bool packAtBind = true) {
  MpiCommunicator comm(session);
  Communicator *c = session.size() > 1 ? &comm : nullptr; // one rank: no communicator
  SymbolBindings syms = binder.symbolsForRank(session.rank());
  if (auto e = checkSymbols(f, syms))
    return e;
  if (exe) {
    auto b0 = std::chrono::steady_clock::now();
    RunOptions o;
    o.comm = c;
    o.paramsVersion = Executable::newParamsVersion(); // weights repacked once
    auto stored = packAtBind ? binder.storedArgsForRank(session.rank(), exe->packedOnly(syms))
                             : binder.storedArgsForRank(session.rank());
    if (!stored)
      return stored.takeError();
    if (packAtBind)
      if (auto e = exe->packWeights(*stored, syms, o.paramsVersion))
        return e;
    if (r) {
      r->bound = stored->stats;
      r->bound.ms = msSince(b0);
    }
    Profile mine;
    if (profile)
      o.profile = &mine;
    std::vector<double> ms;
    llvm::Expected<std::vector<Tensor>> out = std::vector<Tensor>();
    for (unsigned i = 0; i < std::max(1u, repeat); ++i) {
      if (session.size() > 1)
        if (auto e = session.barrier())
          return e;
      auto t0 = std::chrono::steady_clock::now();
      out = exe->runRaw(stored->ptrs, syms, o);
      ms.push_back(msSince(t0));
      if (!out)
        return out.takeError();
    }
    if (r)
      if (auto e = gatherRankTimes(session, ms, mine, *r))
        return e;
    return out;
  }
  auto args = binder.argsForRank(session.rank());
  if (!args)
    return args.takeError();
  InterpOptions o;
  o.comm = c;
  return interpret(f, *args, syms, o);
}

/// --weight-type: params used as matmul/matmul_id weights become that type.
llvm::Error applyWeightType(Module &m, llvm::StringRef name) {
  auto type = parseElemType(name);
  if (!type || *type == ElemType::I32)
    return err(fmt::format("--weight-type={}: expected f32, f16, bf16, q8_0, q4_0 or mxfp4",
                           name.str()));
  if (auto e = retypeWeights(m, *type, WeightSet::Matmul))
    return err(fmt::format("--weight-type={}: {}", name.str(), llvm::toString(std::move(e))));
  return llvm::Error::success();
}

/// Each output compared by the rule of runtime/Compare.h; an error naming
/// every output beyond the tolerance of its type.
llvm::Error compareResults(llvm::ArrayRef<Tensor> got, llvm::ArrayRef<Tensor> ref,
                           bool print) {
  if (got.size() != ref.size())
    return err(fmt::format("--check: the JIT returned {} results, the interpreter {}",
                           got.size(), ref.size()));
  std::string bad;
  for (size_t i = 0; i < got.size(); ++i) {
    auto d = compareTensors(got[i], ref[i]);
    if (!d) {
      llvm::consumeError(d.takeError());
      bad += fmt::format("\n  result{}: JIT {} {} vs interpreter {} {}", i,
                         elemTypeName(got[i].elem).str(), got[i].shapeStr(),
                         elemTypeName(ref[i].elem).str(), ref[i].shapeStr());
      continue;
    }
    double tol = toleranceFor(got[i].elem);
    bool ok = d->within(tol);
    std::string line = fmt::format("result{}: max_abs={:.3g} error={:.3g} ({} of {} elements "
                                   "differ; tolerance {:.3g}) {}",
                                   i, d->maxAbs, d->error, d->numDiffer, ref[i].numElements(),
                                   tol, ok ? "ok" : "FAIL");
    if (print)
      llvm::outs() << "check: " << line << "\n";
    if (!ok)
      bad += "\n  " + line;
  }
  if (!bad.empty())
    return err("--check: the JIT and the interpreter differ:" + bad);
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// The steps of moe-run, in the order main runs them
//===----------------------------------------------------------------------===//

/// --mpi: joins the MPI job (null without --mpi).
llvm::Expected<std::unique_ptr<MpiSession>> startMpi(const RunFlags &flags, int &argc,
                                                     char **&argv) {
  if (!flags.mpi)
    return nullptr;
  if (!mpiSupported())
    return err("--mpi: this moe-run was built without MPI (no MPI was found when it "
               "was configured; install openmpi-bin and libopenmpi-dev, then "
               "reconfigure)");
  auto s = MpiSession::init(&argc, &argv);
  if (!s)
    return err("--mpi: " + llvm::toString(s.takeError()));
  return std::move(*s);
}

/// Parses and verifies FILE, retypes its weights (--weight-type) and runs the
/// pipeline. Null when the module is invalid: the diagnostics are printed.
llvm::Expected<std::unique_ptr<Module>> loadModule(const RunFlags &flags, llvm::SourceMgr &sm,
                                                   DiagEngine &diag) {
  auto buf = readModuleText(flags.input);
  if (!buf)
    return buf.takeError();
  sm.AddNewSourceBuffer(std::move(*buf), llvm::SMLoc());
  auto module = parseModule(sm, 1, diag);
  if (!module || !verifyModule(*module, diag))
    return nullptr;
  if (!flags.weightType.empty())
    if (auto e = applyWeightType(*module, flags.weightType))
      return e;
  PassManager pm;
  if (auto e = pm.addPipeline(flags.pipeline))
    return e;
  if (flags.noQuantizeActivations)
    pm.removePasses("quantize-activations");
  if (auto e = addNumericsInstrumentation(pm, flags.numerics, *module))
    return e;
  if (auto e = pm.run(*module, diag))
    return e;
  return module;
}

/// The function to run (--function, else the first), checked against the
/// rank count (--ranks, or the MPI world size under --mpi).
llvm::Expected<Function *> selectFunction(Module &module, const RunFlags &flags,
                                          const MpiSession *session) {
  if (module.functions.empty())
    return err("the module has no function");
  Function *f = flags.function.empty() ? module.functions[0].get()
                                       : module.lookup(flags.function);
  if (!f)
    return err(fmt::format("no function @{}", flags.function.getValue()));
  int64_t split = numRanks(*f);
  int64_t ranks = flags.ranks;
  std::string ranksFrom = fmt::format("--ranks {}", ranks);
  if (session) { // the MPI world size is the rank count
    if (flags.ranks != 0 && flags.ranks != session->size())
      return err(fmt::format("--ranks {}: mpirun started {} MPI process{} (under --mpi the "
                             "MPI world size is the rank count)",
                             flags.ranks.getValue(), session->size(),
                             session->size() == 1 ? "" : "es"));
    ranks = session->size();
    ranksFrom = fmt::format("--mpi with {} MPI process{}", ranks, ranks == 1 ? "" : "es");
  }
  if (ranks != 0 && ranks != split)
    return err(split == 1 ? fmt::format("{}: @{} is not split over ranks (run "
                                        "tp-split{{ranks={}}} first)",
                                        ranksFrom, f->getName(), ranks)
                          : fmt::format("{}: @{} was split for {} ranks", ranksFrom,
                                        f->getName(), split));
  return f;
}

/// The JIT-compiled function, or null with the interpreter as the engine.
llvm::Expected<std::unique_ptr<Executable>> compileIfJit(const Function &f,
                                                         const RunFlags &flags) {
  bool useJit = flags.engine == Engine::Jit && !flags.interp;
  if (flags.check && !useJit)
    return err("--check compares the JIT against the interpreter; it cannot be used "
               "with --engine=interp");
  if (flags.profile && !useJit)
    return err("--profile times the JIT's kernels; it cannot be used with --engine=interp");
  if (!useJit)
    return nullptr;
  ExecOptions eo;
  eo.threads = flags.threads;
  eo.jit.useCache = !flags.noCache;
  eo.jit.cacheDir = flags.cacheDir;
  eo.jit.perf = flags.perf;
  eo.jit.cpu = flags.cpu;
  return Executable::compile(f, eo);
}

/// Runs `f` on every rank (this process's rank under --mpi), by the JIT when
/// `exe` is given, else by the interpreter.
llvm::Expected<RunResults> runOnAllRanks(const Function &f, Executable *exe, Binder &binder,
                                         MpiSession *session, const RunFlags &flags) {
  RunResults r;
  auto t0 = std::chrono::steady_clock::now();
  if (session) {
    auto mine = runMpiRank(f, exe, binder, *session, &r, flags.repeat, flags.profile,
                           flags.packAtBind);
    if (!mine)
      return mine.takeError();
    r.out = std::move(*mine);
  } else {
    RankRunOptions ro;
    ro.threadsPerRank = std::max(1u, flags.threads.getValue());
    ro.repeat = flags.repeat;
    ro.runMs = &r.runMs;
    ro.rankMs = &r.rankMs;
    ro.bind = &r.bound;
    ro.packAtBind = flags.packAtBind;
    ro.profile = flags.profile ? &r.profile : nullptr;
    auto results = exe ? runOnRanks(*exe, binder, ro) : interpretOnRanks(f, binder);
    if (!results)
      return results.takeError();
    r.out = std::move((*results)[0]);
  }
  if (r.runMs.empty())
    r.runMs.push_back(msSince(t0));
  return r;
}

/// --check: the interpreter on the same arguments, compared with `out`.
llvm::Error checkAgainstInterpreter(const Function &f, Binder &binder, MpiSession *session,
                                    llvm::ArrayRef<Tensor> out, bool print) {
  llvm::Expected<std::vector<Tensor>> ref = std::vector<Tensor>();
  if (session)
    ref = runMpiRank(f, nullptr, binder, *session);
  else if (auto all = interpretOnRanks(f, binder))
    ref = std::move((*all)[0]);
  else
    ref = all.takeError();
  if (!ref)
    return ref.takeError();
  return compareResults(out, *ref, print);
}

/// One summary line per result; with --output, DIR/result<i>.npy too.
llvm::Error writeResults(llvm::ArrayRef<Tensor> out, const RunFlags &flags) {
  if (!flags.output.empty())
    if (auto ec = llvm::sys::fs::create_directories(flags.output))
      return err(fmt::format("cannot create '{}': {}", flags.output.getValue(), ec.message()));
  for (size_t i = 0; i < out.size(); ++i) {
    llvm::outs() << "result" << i << ": " << out[i].summary() << "\n";
    if (flags.output.empty())
      continue;
    llvm::SmallString<256> path(flags.output);
    llvm::sys::path::append(path, "result" + std::to_string(i) + ".npy");
    if (auto e = out[i].save(path))
      return e;
  }
  return llvm::Error::success();
}
} // namespace

int moe::moeRunMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // libLLVM registers an internal `-threads` option of its own; ours (the
  // JIT's worker count) replaces it in this tool.
  if (auto *o = cl::getRegisteredOptions().lookup("threads"))
    o->removeArgument();
  RunFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(argc, argv, "moe-run: compile and run an MoE layer\n");

  auto session = startMpi(flags, argc, argv);
  if (!session)
    return failRun(session.takeError());
  mpiSession = session->get();

  llvm::SourceMgr sm;
  DiagEngine diag(&sm);
  auto module = loadModule(flags, sm, diag);
  if (!module)
    return failRun(module.takeError());
  if (!*module) // invalid: the diagnostics are printed
    return mpiSession ? failRun(err("the module is invalid (see the diagnostics above)")) : 1;
  auto f = selectFunction(**module, flags, mpiSession);
  if (!f)
    return failRun(f.takeError());

  auto syms = bindSymbols(**f, flags.syms);
  if (!syms)
    return failRun(syms.takeError());
  auto source = makeSource(**f, {flags.inputs, flags.params, flags.seed, flags.weights});
  if (!source)
    return failRun(source.takeError());
  Binder binder(**f, source->source, *syms, source->inPlace, source->release);
  auto exe = compileIfJit(**f, flags);
  if (!exe)
    return failRun(exe.takeError());
  bool rank0 = !mpiSession || mpiSession->rank() == 0;
  if (flags.time && *exe && rank0)
    printCompileTime(**exe);

  auto results = runOnAllRanks(**f, exe->get(), binder, mpiSession, flags);
  if (!results)
    return failRun(results.takeError());
  if (flags.time && rank0)
    printRunTimes(*results, exe->get(), binder, mpiSession != nullptr,
                  std::max(1u, flags.threads.getValue()));
  if (flags.profile && rank0)
    printProfile(*results, **exe, std::max(1u, flags.repeat.getValue()),
                 std::max(1u, flags.threads.getValue()), mpiSession != nullptr);
  if (flags.check)
    if (auto e = checkAgainstInterpreter(**f, binder, mpiSession, results->out, rank0))
      return failRun(std::move(e));
  // Rank 0 alone writes; under --mpi every rank then learns whether that
  // failed and exits accordingly (see MpiSession::anyFailed).
  llvm::Error written = rank0 ? writeResults(results->out, flags) : llvm::Error::success();
  if (!mpiSession)
    return written ? moe::fail("moe-run", std::move(written)) : 0;
  bool failed = bool(written);
  if (failed)
    moe::fail("moe-run", err(fmt::format("rank {}: {}", mpiSession->rank(),
                                         llvm::toString(std::move(written)))));
  auto any = mpiSession->anyFailed(failed);
  if (!any)
    return failRun(any.takeError());
  return *any ? 1 : 0;
}
