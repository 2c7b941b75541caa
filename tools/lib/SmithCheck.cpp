//===- SmithCheck.cpp - Differential checks of one program (moe-smith) ----===//
//
// Everything runs in this process through the libraries moe-opt and moe-run
// use (parser, printer, PassManager with the --verify-numerics
// instrumentation, Executable, the interpreter), so a check costs what its
// work costs; the driver runs each program in a child process, so a crash or
// a hang is reported as such.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/SmithCheck.h"
#include "tools/lib/VerifyNumerics.h"

#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Spmd.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "passes/TargetDesc.h"
#include "runtime/Binder.h"
#include "runtime/Compare.h"
#include "runtime/Executable.h"
#include "runtime/InProcessRanks.h"

#include "fmt/format.h"
#include "llvm/ADT/StringExtras.h"

using namespace moe;

namespace {

/// The first lines of a message (reports stay readable).
std::string firstLines(const std::string &s, unsigned n = 6) {
  std::string out;
  unsigned lines = 0;
  for (char c : s) {
    if (c == '\n' && ++lines == n)
      break;
    out += c;
  }
  return out;
}

SmithFailure failure(std::string check, std::string kind, std::string msg,
                     std::string syms = "") {
  return SmithFailure{std::move(check), std::move(kind), firstLines(msg), std::move(syms)};
}

struct Parsed {
  std::unique_ptr<Module> module;
  std::string error;
};

Parsed parse(const std::string &text) {
  auto m = parseModuleString(text, "smith.moe");
  if (!m)
    return {nullptr, llvm::toString(m.takeError())};
  std::string diags;
  DiagEngine diag;
  diag.setHandler([&](const Diagnostic &d) { diags += d.message + "\n"; });
  if (!verifyModule(**m, diag))
    return {nullptr, diags};
  return {std::move(*m), ""};
}

/// A static capture: no symbols and a token input %x (dyn-dims T=x:0).
bool isStaticCapture(const Function &f) {
  return f.symbols().empty() && f.lookupArgument("x") && f.lookupArgument("x")->getType().rank() >= 1;
}

/// The pipeline text of a pass or pipeline check.
std::string pipelineOf(const std::string &check, const Function &f) {
  if (check == "pipeline:default")
    return "default";
  // An SPMD function is split already (tp-split refuses it): its
  // tensor-parallel pipeline is the rest, default then delay-allreduce.
  if (check == "pipeline:tp2")
    return numRanks(f) > 1 ? "default,delay-allreduce"
                           : "default,tp-split{ranks=2},delay-allreduce";
  if (check == "pipeline:tp3")
    return "default,tp-split{ranks=3},delay-allreduce";
  std::string pass = check.substr(5);
  if (pass == "dyn-dims" && isStaticCapture(f))
    return "dyn-dims{T=x:0}";
  return pass;
}

/// Runs `pipeline` on a copy of `m` under --verify-numerics; the result, or
/// a failure.
std::optional<SmithFailure> runPipeline(const Module &m, const std::string &check,
                                        const std::string &pipeline, uint64_t seed,
                                        std::unique_ptr<Module> *out) {
  auto mod = m.clone();
  std::string errors;
  DiagEngine diag;
  diag.setHandler([&](const Diagnostic &d) {
    if (d.severity == Severity::Error)
      errors += d.message + "\n";
  });
  PassManager pm;
  pm.setTarget(&TargetDesc::cpu());
  std::string nullText;
  llvm::raw_string_ostream nullOut(nullText);
  pm.setOutput(&nullOut);
  if (auto e = pm.addPipeline(pipeline))
    return failure(check, "error", llvm::toString(std::move(e)));
  pm.addInstrumentation(createVerifyNumerics({seed, 1e-4}));
  if (auto e = pm.run(*mod, diag)) {
    std::string msg = llvm::toString(std::move(e));
    auto has = [&](const char *s) { return msg.find(s) != std::string::npos; };
    // Kinds the reducer must not confuse: a pass's result differs; the
    // ranks disagree on a result; the function before the pass does not
    // run (a reduction step made it invalid, e.g. a rank-local result).
    const char *kind = has("differs between rank")          ? "ranks-disagree"
                       : has("before the pass does not run") ? "before-fails"
                       : has("--verify-numerics")            ? "numerics"
                                                              : "error";
    return failure(check, kind, msg);
  }
  if (!errors.empty())
    return failure(check, "diag-error", errors);
  // The result must print and parse back to itself too.
  std::string text = toString(*mod);
  Parsed again = parse(text);
  if (!again.module)
    return failure(check, "unparsable", "the result does not parse back: " + again.error);
  if (toString(*again.module) != text)
    return failure(check, "unparsable", "the result does not print back to itself");
  if (out)
    *out = std::move(mod);
  return std::nullopt;
}

/// The symbol values the jit and ranks checks run at.
std::vector<SymbolBindings> runCases(const Function &f) {
  return symbolCombinations(f, [](const SymbolDecl &s) {
    std::vector<int64_t> vals;
    for (int64_t v : {std::max<int64_t>(s.lo, 1), std::min<int64_t>(7, s.hi),
                      std::min<int64_t>(s.hi, 40)})
      if (v >= s.lo && v <= s.hi && !llvm::is_contained(vals, v))
        vals.push_back(v);
    return vals;
  });
}

std::string symsText(const SymbolBindings &b) {
  std::vector<std::string> kv;
  for (auto &e : b)
    kv.push_back(fmt::format("{}={}", e.getKey().str(), e.getValue()));
  std::sort(kv.begin(), kv.end());
  return llvm::join(kv, " ");
}

llvm::Expected<std::unique_ptr<Executable>> compile(const Function &f) {
  ExecOptions eo;
  eo.threads = 1;
  eo.jit.useCache = false;
  eo.jit.warn = [](const std::string &) {};
  return Executable::compile(f, eo);
}

/// Rank 0's results of `exe` at `b` (every rank run).
llvm::Expected<std::vector<Tensor>> jitRun(Executable &exe, const Function &f,
                                           const SymbolBindings &b, uint64_t seed) {
  Binder binder(f, randomSource(seed), b);
  auto r = runOnRanks(exe, binder);
  if (!r)
    return r.takeError();
  return std::move((*r)[0]);
}

/// The f32 tolerance of the jit and ranks checks on `f`: Compare.h's, widened
/// where a matmul rounds a computed activation to q8_0 (2^-8) or bf16
/// (2^-10), or a cast rounds a computed value (castTolerance): the JIT
/// accumulates in f32 where the interpreter uses double, and that last-bit
/// difference upstream can flip one rounding (a q8_0 step is 1/127 of its
/// block's maximum). A wrong kernel errs by far more.
double runTolerance(const Function &f) {
  double tol = std::max(kF32Tolerance, castTolerance(f));
  for (auto &op : f.getBody()) {
    if (!op.is(OpKind::Matmul) && !op.is(OpKind::MatmulId))
      continue;
    const Attribute *act = op.getAttr("act");
    if (!act || act->kind() != Attribute::Kind::Ident || op.getOperand(0)->isArgument())
      continue;
    if (act->getIdent() == "q8_0")
      tol = std::max(tol, 0x1p-8);
    else if (act->getIdent() == "bf16")
      tol = std::max(tol, 0x1p-10);
  }
  return tol;
}

/// Compares results by runtime/Compare.h's rule; a message on a mismatch.
std::optional<std::string> compareAll(const std::vector<Tensor> &got,
                                      const std::vector<Tensor> &ref, double f32Tol) {
  if (got.size() != ref.size())
    return fmt::format("{} results vs {}", got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i) {
    auto d = compareTensors(got[i], ref[i]);
    if (!d)
      return fmt::format("result{}: {}", i, llvm::toString(d.takeError()));
    double tol = toleranceFor(ref[i].elem, f32Tol);
    if (!d->within(tol))
      return fmt::format("result{}: max_abs={:.3g} error={:.3g} > tolerance {:.3g} ({} of {} "
                         "elements differ)",
                         i, d->maxAbs, d->error, tol, d->numDiffer, ref[i].numElements());
  }
  return std::nullopt;
}

bool wanted(const SmithCheckOptions &o, const std::string &name) {
  return o.only.empty() || o.only == name;
}

void note(const SmithCheckOptions &o, const std::string &name) {
  if (o.progress)
    o.progress(name);
}

} // namespace

std::vector<std::string> moe::smithCheckNames(const std::string &text) {
  std::vector<std::string> names{"roundtrip"};
  for (auto &p : PassRegistry::passes())
    if (!llvm::StringRef(p.name).starts_with("test-"))
      names.push_back("pass:" + p.name);
  names.insert(names.end(), {"pipeline:default", "pipeline:tp2", "pipeline:tp3", "jit",
                             "ranks2", "ranks3"});
  return names;
}

std::optional<SmithFailure> moe::smithCheck(const std::string &text,
                                            const SmithCheckOptions &o) {
  Parsed p = parse(text);
  if (!p.module)
    return failure("roundtrip", "unparsable", p.error);
  if (p.module->functions.size() != 1)
    return failure("roundtrip", "unparsable", "expected one function");
  const Function &f = *p.module->functions[0];
  if (wanted(o, "roundtrip")) {
    note(o, "roundtrip");
    std::string t1 = toString(*p.module);
    Parsed q = parse(t1);
    if (!q.module)
      return failure("roundtrip", "unparsable", "the printed function does not parse: " + q.error);
    if (toString(*q.module) != t1)
      return failure("roundtrip", "mismatch", "print(parse(print(f))) != print(f)");
  }
  std::vector<std::string> names = smithCheckNames(text);
  // A test-only pass may be named explicitly (the reducer's own test).
  if (llvm::StringRef(o.only).starts_with("pass:") &&
      std::find(names.begin(), names.end(), o.only) == names.end())
    names.push_back(o.only);
  bool split = numRanks(f) > 1;
  for (auto &name : names) {
    if (!llvm::StringRef(name).starts_with("pass:") || !wanted(o, name))
      continue;
    if (split && name == "pass:tp-split")
      continue; // refuses a split function, by design
    note(o, name);
    if (auto fail = runPipeline(*p.module, name, pipelineOf(name, f), o.numericsSeed, nullptr))
      return fail;
  }
  // The pipelines; their results feed the jit and ranks checks.
  bool needDef = wanted(o, "pipeline:default") || (o.jit && (wanted(o, "jit") ||
                                                             wanted(o, "ranks2") ||
                                                             wanted(o, "ranks3")));
  std::unique_ptr<Module> def, tp[2];
  if (needDef)
    note(o, "pipeline:default");
  if (needDef)
    if (auto fail = runPipeline(*p.module, "pipeline:default", "default", o.numericsSeed, &def))
      return fail;
  for (int n : {2, 3}) {
    std::string check = fmt::format("pipeline:tp{}", n), ranks = fmt::format("ranks{}", n);
    if (!wanted(o, check) && !(o.jit && wanted(o, ranks)))
      continue;
    if (split && n == 3)
      continue;
    note(o, check);
    if (auto fail = runPipeline(*p.module, check, pipelineOf(check, f), o.numericsSeed,
                                &tp[n - 2]))
      return fail;
  }
  if (!o.jit || !def)
    return std::nullopt;

  // The JIT against the interpreter, on the function after `default`.
  const Function &fd = *def->functions[0];
  std::unique_ptr<Executable> exeDef;
  if (wanted(o, "jit") || wanted(o, "ranks2") || wanted(o, "ranks3")) {
    note(o, "jit");
    auto exe = compile(fd);
    if (!exe)
      return failure("jit", "error", "compile: " + llvm::toString(exe.takeError()));
    exeDef = std::move(*exe);
  }
  if (wanted(o, "jit"))
    for (auto &b : runCases(fd)) {
      auto got = jitRun(*exeDef, fd, b, o.numericsSeed);
      if (!got)
        return failure("jit", "error", llvm::toString(got.takeError()), symsText(b));
      Binder binder(fd, randomSource(o.numericsSeed), b);
      auto ref = interpretOnRanks(fd, binder);
      if (!ref)
        return failure("jit", "error", "interpreter: " + llvm::toString(ref.takeError()),
                       symsText(b));
      if (auto m = compareAll(*got, (*ref)[0], runTolerance(fd)))
        return failure("jit", "mismatch", "the JIT and the interpreter differ: " + *m,
                       symsText(b));
    }
  // N ranks against one: only where tp-split split an unsplit function.
  for (int n : {2, 3}) {
    std::string check = fmt::format("ranks{}", n);
    if (!wanted(o, check) || numRanks(f) > 1)
      continue;
    const Function &ft = *tp[n - 2]->functions[0];
    if (numRanks(ft) != n)
      continue;
    note(o, check);
    auto exe = compile(ft);
    if (!exe)
      return failure(check, "error", "compile: " + llvm::toString(exe.takeError()));
    for (auto &b : runCases(ft)) {
      auto ref = jitRun(*exeDef, fd, b, o.numericsSeed);
      if (!ref)
        return failure(check, "error", "1 rank: " + llvm::toString(ref.takeError()), symsText(b));
      auto got = jitRun(**exe, ft, b, o.numericsSeed);
      if (!got)
        return failure(check, "error", fmt::format("{} ranks: {}", n,
                                                   llvm::toString(got.takeError())),
                       symsText(b));
      if (auto m = compareAll(*got, *ref, std::max(runTolerance(fd), runTolerance(ft))))
        return failure(check, "mismatch",
                       fmt::format("{} ranks and 1 rank differ: {}", n, *m), symsText(b));
    }
  }
  return std::nullopt;
}

std::vector<std::string> moe::smithRunLines(const std::string &text, const SmithFailure &fail) {
  Parsed p = parse(text);
  const Function *f = p.module ? p.module->functions[0].get() : nullptr;
  std::string syms;
  for (auto &kv : llvm::split(fail.syms, ' '))
    if (!kv.empty())
      syms += " --sym " + kv.str();
  const std::string &c = fail.check;
  if (c == "roundtrip")
    return {"moe-opt %s -o %t.1.moe", "moe-opt %t.1.moe -o %t.2.moe", "diff %t.1.moe %t.2.moe"};
  if (llvm::StringRef(c).starts_with("pass:") || llvm::StringRef(c).starts_with("pipeline:"))
    return {fmt::format("moe-opt %s -p '{}' --verify-numerics -o /dev/null",
                        f ? pipelineOf(c, *f) : c.substr(c.find(':') + 1))};
  if (c == "jit")
    return {fmt::format("moe-run %s -p default --check{}", syms)};
  // ranksN: the split function on N ranks against the unsplit one.
  int n = c == "ranks3" ? 3 : 2;
  return {"rm -rf %t && mkdir -p %t",
          fmt::format("moe-run %s -p default{} --output %t/one", syms),
          fmt::format("moe-run %s -p 'default,tp-split{{ranks={}}},delay-allreduce' --ranks {}{} "
                      "--output %t/ranks",
                      n, n, syms),
          "%python %srcroot/tests/lit/run/Inputs/compare_ranks.py %t/one/result0.npy "
          "%t/ranks/result0.npy"};
}
