//===- RunMain.cpp - The moe-run driver -----------------------------------===//
//
// moe-run FILE [-p pipeline] [--sym T=7] [--input x=x.npy] [--param w=w.npy]
//         [--weights model.gguf] [--seed N] [--ranks N] [--output DIR] [--mpi]
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
//===----------------------------------------------------------------------===//
#include "tools/lib/RunMain.h"
#include "tools/lib/ToolCommon.h"

#include "ir/ParamDerive.h"
#include "ir/Parser.h"
#include "ir/Spmd.h"
#include "ir/Verifier.h"
#include "runtime/Binder.h"
#include "runtime/GgufSource.h"
#include "runtime/InProcessRanks.h"
#include "runtime/Interpreter.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/Random.h"

#include "fmt/format.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace moe;
namespace cl = llvm::cl;

namespace {
enum class Engine { Interp };

struct RunFlags {
  cl::OptionCategory cat{"moe-run options"};
  cl::opt<std::string> input{cl::Positional, cl::desc("<input .moe file, or - for stdin>"),
                             cl::Required, cl::cat(cat)};
  cl::opt<std::string> pipeline{"p", cl::desc("Pass pipeline to run first"),
                                cl::value_desc("pipeline"), cl::cat(cat)};
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
  cl::opt<Engine> engine{"engine", cl::desc("Execution engine"), cl::init(Engine::Interp),
                         cl::values(clEnumValN(Engine::Interp, "interp",
                                               "the reference interpreter")),
                         cl::cat(cat)};
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

llvm::Error err(std::string m) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
}

/// Parses NAME=VALUE lists into a map, rejecting duplicates.
llvm::Expected<llvm::StringMap<std::string>> parsePairs(const cl::list<std::string> &l,
                                                        const char *flag) {
  llvm::StringMap<std::string> m;
  for (auto &s : l) {
    auto [k, v] = llvm::StringRef(s).split('=');
    if (k.empty() || v.empty() || !llvm::StringRef(s).contains('='))
      return err(fmt::format("--{} expects NAME=VALUE, got '{}'", flag, s));
    k.consume_front("%");
    if (m.count(k))
      return err(fmt::format("--{} {} given twice", flag, k.str()));
    m[k] = v.str();
  }
  return m;
}

llvm::Expected<SymbolBindings> bindSymbols(const Function &f, const RunFlags &flags) {
  auto pairs = parsePairs(flags.syms, "sym");
  if (!pairs)
    return pairs.takeError();
  SymbolBindings b;
  for (auto &e : *pairs) {
    const SymbolDecl *s = f.lookupSymbol(e.getKey());
    if (!s)
      return err(fmt::format("--sym {}: @{} has no symbol '{}'", e.getKey().str(), f.getName(),
                             e.getKey().str()));
    if (f.attrs().has(s->name))
      return err(fmt::format("--sym {}: '{}' is rank-dependent and bound per rank",
                             e.getKey().str(), s->name));
    int64_t v;
    if (llvm::StringRef(e.getValue()).getAsInteger(10, v))
      return err(fmt::format("--sym {}={}: not an integer", s->name, e.getValue()));
    if (v < s->lo || v > s->hi)
      return err(fmt::format("--sym {}={}: outside the symbol's range [{}, {}]", s->name, v,
                             s->lo, s->hi));
    b[s->name] = v;
  }
  for (auto &s : f.symbols())
    if (!b.count(s.name) && !f.attrs().has(s.name))
      return err(fmt::format("symbol '{}' of @{} is not bound: give --sym {}=N (range [{}, "
                             "{}])", s.name, f.getName(), s.name, s.lo, s.hi));
  return b;
}

/// Files for the named arguments, the --weights GGUF file for the other
/// params, the seeded generator for the rest.
llvm::Expected<ArgSource> makeSource(const Function &f, const RunFlags &flags) {
  auto inputs = parsePairs(flags.inputs, "input");
  if (!inputs)
    return inputs.takeError();
  auto params = parsePairs(flags.params, "param");
  if (!params)
    return params.takeError();
  auto files = std::make_shared<llvm::StringMap<std::string>>();
  for (auto [map, wantParam, flag] : {std::tuple{&*inputs, false, "input"},
                                      std::tuple{&*params, true, "param"}})
    for (auto &e : *map) {
      const Value *a = f.lookupArgument(e.getKey());
      if (!a) {
        std::string names;
        for (auto *x : f.getArguments())
          names += (names.empty() ? "" : ", ") + x->getName();
        return err(fmt::format("--{} {}: @{} has no argument '{}' (arguments: {})", flag,
                               e.getKey().str(), f.getName(), e.getKey().str(), names));
      }
      if (a->isParam() != wantParam)
        return err(fmt::format("--{} {}: '{}' is {}; use --{}", flag, e.getKey().str(),
                               e.getKey().str(), wantParam ? "an input" : "a param",
                               wantParam ? "input" : "param"));
      if (a->argAttrs().has("derive"))
        return err(fmt::format("--param {}: this param is derived by a pass from other "
                               "params; give those instead", e.getKey().str()));
      (*files)[e.getKey()] = e.getValue();
    }
  ArgSource rest = randomSource(flags.seed);
  if (!flags.weights.empty()) {
    auto w = gguf::GgufFile::open(flags.weights);
    if (!w)
      return w.takeError();
    rest = ggufSource(std::shared_ptr<const gguf::GgufFile>(std::move(*w)), rest);
  }
  return ArgSource([files, rest](const Value &arg, ElemType elem,
                                 llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
    auto it = files->find(arg.getName());
    if (it == files->end())
      return rest(arg, elem, shape);
    auto t = Tensor::load(it->second, elem);
    if (!t)
      return t.takeError();
    if (llvm::ArrayRef<int64_t>(t->shape) != shape)
      return err(fmt::format("{}: shape {} does not match %{}, which needs {}{}", it->second,
                             t->shapeStr(), arg.getName(), formatShape(shape),
                             arg.isParam() ? " (params are given whole)" : ""));
    return t;
  });
}

int fail(llvm::Error e) {
  if (mpiSession) {
    llvm::outs().flush();
    // One write, so the lines of ranks failing together do not interleave.
    llvm::errs() << fmt::format("moe-run: error: rank {}: {}\n", mpiSession->rank(),
                                llvm::toString(std::move(e)));
    mpiSession->abort(1); // ends every rank: none is left waiting in a collective
  }
  llvm::errs() << "moe-run: error: " << llvm::toString(std::move(e)) << "\n";
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

/// This process's rank of `f` under --mpi, all_reduce over MPI.
llvm::Expected<std::vector<Tensor>> interpretMpiRank(const Function &f, Binder &binder,
                                                     MpiSession &session) {
  auto args = binder.argsForRank(session.rank());
  if (!args)
    return args.takeError();
  MpiCommunicator comm(session);
  InterpOptions o;
  if (session.size() > 1) // as interpretOnRanks: one rank has no communicator
    o.comm = &comm;
  return interpret(f, *args, binder.symbolsForRank(session.rank()), o);
}
} // namespace

int moe::moeRunMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  RunFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(argc, argv, "moe-run: compile and run an MoE layer\n");

  std::unique_ptr<MpiSession> session;
  if (flags.mpi) {
    if (!mpiSupported())
      return fail(err("--mpi: this moe-run was built without MPI (no MPI was found when it "
                      "was configured; install openmpi-bin and libopenmpi-dev, then "
                      "reconfigure)"));
    auto s = MpiSession::init(&argc, &argv);
    if (!s)
      return fail(err("--mpi: " + llvm::toString(s.takeError())));
    session = std::move(*s);
    mpiSession = session.get();
  }

  auto buf = readModuleText(flags.input);
  if (!buf)
    return fail(buf.takeError());
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(std::move(*buf), llvm::SMLoc());
  DiagEngine diag(&sm);
  auto module = parseModule(sm, 1, diag);
  if (!module || !verifyModule(*module, diag)) {
    if (mpiSession)
      return fail(err("the module is invalid (see the diagnostics above)"));
    return 1;
  }
  PassManager pm;
  if (auto e = pm.addPipeline(flags.pipeline))
    return fail(std::move(e));
  if (auto e = addNumericsInstrumentation(pm, flags.numerics, *module))
    return fail(std::move(e));
  if (auto e = pm.run(*module, diag))
    return fail(std::move(e));

  if (module->functions.empty())
    return fail(err("the module has no function"));
  Function *f = flags.function.empty() ? module->functions[0].get()
                                       : module->lookup(flags.function);
  if (!f)
    return fail(err(fmt::format("no function @{}", flags.function.getValue())));
  int64_t split = numRanks(*f);
  int64_t ranks = flags.ranks;
  std::string ranksFrom = fmt::format("--ranks {}", ranks);
  if (session) { // the MPI world size is the rank count
    if (flags.ranks != 0 && flags.ranks != session->size())
      return fail(err(fmt::format("--ranks {}: mpirun started {} MPI process{} (under --mpi the "
                                  "MPI world size is the rank count)",
                                  flags.ranks.getValue(), session->size(),
                                  session->size() == 1 ? "" : "es")));
    ranks = session->size();
    ranksFrom = fmt::format("--mpi with {} MPI process{}", ranks, ranks == 1 ? "" : "es");
  }
  if (ranks != 0 && ranks != split)
    return fail(err(split == 1 ? fmt::format("{}: @{} is not split over ranks (run "
                                             "tp-split{{ranks={}}} first)",
                                             ranksFrom, f->getName(), ranks)
                               : fmt::format("{}: @{} was split for {} ranks", ranksFrom,
                                             f->getName(), split)));
  auto syms = bindSymbols(*f, flags);
  if (!syms)
    return fail(syms.takeError());
  auto source = makeSource(*f, flags);
  if (!source)
    return fail(source.takeError());
  Binder binder(*f, *source, *syms);
  std::vector<Tensor> out; // rank 0's results
  if (session) {
    auto mine = interpretMpiRank(*f, binder, *session);
    if (!mine)
      return fail(mine.takeError());
    if (session->rank() != 0) // rank 0 alone prints and writes
      return 0;
    out = std::move(*mine);
  } else {
    auto results = interpretOnRanks(*f, binder);
    if (!results)
      return fail(results.takeError());
    out = std::move((*results)[0]);
  }

  if (!flags.output.empty())
    if (auto ec = llvm::sys::fs::create_directories(flags.output))
      return fail(err(fmt::format("cannot create '{}': {}", flags.output.getValue(),
                                  ec.message())));
  for (size_t i = 0; i < out.size(); ++i) {
    llvm::outs() << "result" << i << ": " << out[i].summary() << "\n";
    if (flags.output.empty())
      continue;
    llvm::SmallString<256> path(flags.output);
    llvm::sys::path::append(path, "result" + std::to_string(i) + ".npy");
    if (auto e = out[i].save(path))
      return fail(std::move(e));
  }
  return 0;
}
