//===- PassManagerTest.cpp - Pipelines, statistics, hooks, verify-each ----===//
//
// DESIGN.md ("Passes", "Tools"): passes are registered by name with options,
// pipelines are text (`cse,dce`, `tp-split{ranks=2}`), `default` is a named
// pipeline that composes (`default,cse`), the pass manager verifies after each
// pass (--verify-each, default on), counts statistics, and offers
// instrumentation hooks whose errors fail the run with the pass's name.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>

using namespace moe;

namespace {

std::vector<std::string> names(const std::vector<std::unique_ptr<Pass>> &ps) {
  std::vector<std::string> r;
  for (auto &p : ps)
    r.push_back(p->getName().str());
  return r;
}

/// The pipeline's pass names, or the error text prefixed with "error: ".
std::vector<std::string> parse(llvm::StringRef text) {
  auto ps = PassRegistry::parsePipeline(text);
  if (!ps)
    return {"error: " + llvm::toString(ps.takeError())};
  return names(*ps);
}

std::string parseError(llvm::StringRef text) {
  auto ps = PassRegistry::parsePipeline(text);
  if (ps) {
    ADD_FAILURE() << "pipeline '" << text.str() << "' was accepted";
    return "";
  }
  return llvm::toString(ps.takeError());
}

std::unique_ptr<Module> mustParse(llvm::StringRef text) {
  auto m = parseModuleString(text);
  if (!m) {
    ADD_FAILURE() << llvm::toString(m.takeError());
    return nullptr;
  }
  return std::move(*m);
}

/// Two identical negs (one CSE), one dead op (one more DCE'd after CSE).
const char *kRedundant = "func @f(%x: tensor<T x 8 x f32>) -> tensor<T x 8 x f32>\n"
                         "    where T in [1, 16] {\n"
                         "  %a = neg %x\n"
                         "  %b = neg %x\n"
                         "  %dead = exp %x\n"
                         "  %s = add %a, %b\n"
                         "  return %s\n"
                         "}\n";

struct Diags {
  DiagEngine diag;
  std::vector<std::string> errors;
  Diags() {
    diag.setHandler([this](const Diagnostic &d) {
      if (d.severity == Severity::Error)
        errors.push_back(d.message);
    });
  }
};

/// A pass that breaks the IR: gives the first non-return op a wrong type.
class BreakTypesPass : public Pass {
public:
  Statistic numBroken{this, "num-broken", "result types made wrong"};
  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    for (auto &op : f.getBody())
      if (op.getNumResults()) {
        op.getResult()->setType(TensorType({7, 7}, ElemType::F32));
        ++numBroken;
        return true;
      }
    return false;
  }
};

/// A pass that fails internally.
class FailingPass : public Pass {
public:
  llvm::Expected<bool> runOnFunction(Function &, PassContext &) override {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "internal trouble");
  }
};

/// A pass that reports an error diagnostic (and leaves the IR valid).
class DiagnosingPass : public Pass {
public:
  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    ctx.diag.opError(&f.getBody().front(), "cannot handle this");
    return false;
  }
};

/// Records the calls it sees; fails afterPass for a given pass name.
class Recorder : public PassInstrumentation {
public:
  Recorder(std::vector<std::string> &log, std::string failOn = "")
      : log(log), failOn(std::move(failOn)) {}
  void beforePass(const Pass &p, const Function &f) override {
    log.push_back("before " + p.getName().str() + " @" + f.getName());
  }
  llvm::Error afterPass(const Pass &p, const Function &f) override {
    log.push_back("after " + p.getName().str() + " @" + f.getName());
    if (p.getName() == failOn)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "outputs differ by 0.5");
    return llvm::Error::success();
  }
  std::vector<std::string> &log;
  std::string failOn;
};

} // namespace

//===----------------------------------------------------------------------===//
// Pipeline parsing.
//===----------------------------------------------------------------------===//

TEST(PassPipeline, PlainLists) {
  EXPECT_EQ(parse("cse,dce"), (std::vector<std::string>{"cse", "dce"}));
  EXPECT_EQ(parse(" cse , dce "), (std::vector<std::string>{"cse", "dce"}));
  EXPECT_EQ(parse("dce"), (std::vector<std::string>{"dce"}));
  EXPECT_EQ(parse(""), (std::vector<std::string>{}));
  EXPECT_EQ(parse("cse,cse"), (std::vector<std::string>{"cse", "cse"}));
}

TEST(PassPipeline, DefaultExpandsAndComposes) {
  auto *pl = PassRegistry::lookupPipeline("default");
  ASSERT_TRUE(pl);
  std::vector<std::string> dflt = parse(pl->passes);
  ASSERT_FALSE(dflt.empty());
  ASSERT_EQ(dflt[0].rfind("error: ", 0), std::string::npos) << dflt[0];
  EXPECT_EQ(parse("default"), dflt);
  // DESIGN.md: cse/dce/canonicalize are part of the single-device pipeline.
  for (const char *n : {"canonicalize", "cse", "dce"})
    EXPECT_NE(std::find(dflt.begin(), dflt.end(), n), dflt.end()) << n;
  // Composes with passes before and after.
  std::vector<std::string> withCse = dflt;
  withCse.push_back("cse");
  EXPECT_EQ(parse("default,cse"), withCse);
  std::vector<std::string> dceFirst{"dce"};
  dceFirst.insert(dceFirst.end(), dflt.begin(), dflt.end());
  EXPECT_EQ(parse("dce,default"), dceFirst);
  std::vector<std::string> twice = dflt;
  twice.insert(twice.end(), dflt.begin(), dflt.end());
  EXPECT_EQ(parse("default,default"), twice);
  // A pass with options after the named pipeline.
  auto ps = PassRegistry::parsePipeline("default,dyn-dims{T=x:0}");
  ASSERT_TRUE(bool(ps)) << llvm::toString(ps.takeError());
  EXPECT_EQ((*ps).back()->describe(), "dyn-dims{T=x:0}");
  // A named pipeline takes no options.
  EXPECT_NE(parseError("default{x=1}").find("default"), std::string::npos);
}

TEST(PassPipeline, OptionErrorsNameTheOptionAndThePass) {
  std::string e = parseError("cse{x=1}");
  EXPECT_NE(e.find("'x'"), std::string::npos) << e;
  EXPECT_NE(e.find("cse"), std::string::npos) << e;
  e = parseError("dyn-dims{min=abc}");
  EXPECT_NE(e.find("'min'"), std::string::npos) << e;
  EXPECT_NE(e.find("dyn-dims"), std::string::npos) << e;
  EXPECT_NE(e.find("abc"), std::string::npos) << e;
  e = parseError("dyn-dims{min=1,min=2}");
  EXPECT_NE(e.find("min"), std::string::npos) << e;
  e = parseError("cse{novalue}");
  EXPECT_NE(e.find("novalue"), std::string::npos) << e;
  // Options are kept and described.
  auto ps = PassRegistry::parsePipeline("dyn-dims{T=x:0, max=512}");
  ASSERT_TRUE(bool(ps)) << llvm::toString(ps.takeError());
  EXPECT_EQ((*ps)[0]->describe(), "dyn-dims{T=x:0,max=512}");
  EXPECT_EQ((*ps)[0]->getName(), "dyn-dims");
}

TEST(PassPipeline, UnknownPassesAreNamed) {
  std::string e = parseError("bogus");
  EXPECT_NE(e.find("'bogus'"), std::string::npos) << e;
  e = parseError("cse,bogus-pass{a=1},dce");
  EXPECT_NE(e.find("'bogus-pass'"), std::string::npos) << e;
}

TEST(PassPipeline, Malformed) {
  for (const char *p : {"cse{", "cse}", "cse{x=1", "cse{{x=1}", "cse{x=1}}", "}cse{"}) {
    SCOPED_TRACE(p);
    std::string e = parseError(p);
    EXPECT_NE(e.find("unbalanced"), std::string::npos) << e;
  }
  EXPECT_NE(parseError("cse,,dce").find("empty"), std::string::npos);
  EXPECT_NE(parseError("cse,").find("empty"), std::string::npos);
  // Text after the option block.
  EXPECT_NE(parseError("cse{}dce").find("cse{}dce"), std::string::npos);
}

TEST(PassPipeline, RegistryListsEveryPass) {
  std::string s;
  llvm::raw_string_ostream os(s);
  PassRegistry::printList(os);
  os.flush();
  for (auto &p : PassRegistry::passes()) {
    EXPECT_NE(s.find("  " + p.name + "\n"), std::string::npos) << p.name;
    EXPECT_EQ(PassRegistry::lookup(p.name), &p);
  }
  EXPECT_NE(s.find("default"), std::string::npos);
  EXPECT_EQ(PassRegistry::lookup("bogus"), nullptr);
}

//===----------------------------------------------------------------------===//
// Running.
//===----------------------------------------------------------------------===//

TEST(PassManager, RunsAPipelineAndCountsStatistics) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager::Options o;
  o.statistics = true;
  PassManager pm(o);
  std::string out;
  llvm::raw_string_ostream os(out);
  pm.setOutput(&os);
  ASSERT_FALSE(bool(pm.addPipeline("cse,dce")));
  Diags d;
  auto e = pm.run(*m, d.diag);
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  os.flush();
  EXPECT_TRUE(d.errors.empty());
  // One neg merged, then the dead exp erased.
  std::string p = toString(*m);
  EXPECT_EQ(p, "func @f(%x: tensor<T x 8 x f32>)\n"
               "    -> tensor<T x 8 x f32> where T in [1, 16] {\n"
               "  %a = neg %x : tensor<T x 8 x f32>\n"
               "  %s = add %a, %a : tensor<T x 8 x f32>\n"
               "  return %s\n"
               "}\n");
  auto &ps = pm.getPasses();
  ASSERT_EQ(ps.size(), 2u);
  ASSERT_EQ(ps[0]->getStatistics().size(), 1u);
  EXPECT_EQ(ps[0]->getStatistics()[0]->value, 1);
  ASSERT_EQ(ps[1]->getStatistics().size(), 1u);
  EXPECT_EQ(ps[1]->getStatistics()[0]->value, 1);
  // Printed in the statistics report.
  EXPECT_NE(out.find("Pass statistics report"), std::string::npos) << out;
  EXPECT_NE(out.find("(1) " + std::string(ps[0]->getStatistics()[0]->name)), std::string::npos)
      << out;
  EXPECT_NE(out.find("(1) " + std::string(ps[1]->getStatistics()[0]->name)), std::string::npos)
      << out;
  // Running again changes nothing and counts nothing more.
  std::string before = toString(*m);
  PassManager pm2;
  ASSERT_FALSE(bool(pm2.addPipeline("cse,dce")));
  ASSERT_FALSE(bool(pm2.run(*m, d.diag)));
  EXPECT_EQ(toString(*m), before);
  EXPECT_EQ(pm2.getPasses()[0]->getStatistics()[0]->value, 0);
}

TEST(PassManager, DefaultPipelineRunsOnEveryFunction) {
  auto m = mustParse(std::string("module @m {\n") + kRedundant +
                     "func @g(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                     "  %a = exp %x\n  %b = exp %x\n  %c = mul %a, %b\n  return %c\n}\n}\n");
  ASSERT_TRUE(m);
  PassManager pm;
  ASSERT_FALSE(bool(pm.addPipeline("default")));
  Diags d;
  auto e = pm.run(*m, d.diag);
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  EXPECT_EQ(m->lookup("f")->getBody().size(), 3u) << toString(*m);
  EXPECT_EQ(m->lookup("g")->getBody().size(), 3u) << toString(*m);
  EXPECT_TRUE(verifyModule(*m, d.diag));
}

TEST(PassManager, PrintIrAfterAll) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager::Options o;
  o.printAfterAll = true;
  PassManager pm(o);
  std::string out;
  llvm::raw_string_ostream os(out);
  pm.setOutput(&os);
  ASSERT_FALSE(bool(pm.addPipeline("cse,dce")));
  Diags d;
  ASSERT_FALSE(bool(pm.run(*m, d.diag)));
  os.flush();
  EXPECT_NE(out.find("IR Dump After cse"), std::string::npos) << out;
  EXPECT_NE(out.find("IR Dump After dce"), std::string::npos) << out;
  // The dump after dce shows the final IR.
  EXPECT_NE(out.find("%s = add %a, %a"), std::string::npos) << out;
}

TEST(PassManager, PrintIrAfterChangeOnlyAfterChanges) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager::Options o;
  o.printAfterChange = true;
  PassManager pm(o);
  std::string out;
  llvm::raw_string_ostream os(out);
  pm.setOutput(&os);
  // The first cse merges the negs; the second finds nothing to do.
  ASSERT_FALSE(bool(pm.addPipeline("cse,cse")));
  Diags d;
  ASSERT_FALSE(bool(pm.run(*m, d.diag)));
  os.flush();
  size_t n = 0;
  for (size_t p = out.find("IR Dump After"); p != std::string::npos;
       p = out.find("IR Dump After", p + 1))
    ++n;
  EXPECT_EQ(n, 1u) << out;
  EXPECT_NE(out.find("IR Dump After cse"), std::string::npos) << out;
  EXPECT_EQ(out.find("no change"), std::string::npos) << out;
}

TEST(PassManager, InstrumentationErrorFailsTheRunWithThePassName) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  std::vector<std::string> log;
  PassManager pm;
  ASSERT_FALSE(bool(pm.addPipeline("cse,dce")));
  pm.addInstrumentation(std::make_unique<Recorder>(log, "dce"));
  Diags d;
  auto e = pm.run(*m, d.diag);
  ASSERT_TRUE(bool(e));
  std::string msg = llvm::toString(std::move(e));
  EXPECT_NE(msg.find("'dce'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outputs differ by 0.5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("@f"), std::string::npos) << msg;
  EXPECT_EQ(log, (std::vector<std::string>{"before cse @f", "after cse @f", "before dce @f",
                                           "after dce @f"}));
  // A passing instrumentation sees every pass on every function.
  auto m2 = mustParse(std::string("module @m {\n") + kRedundant +
                      "func @g(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n}\n");
  ASSERT_TRUE(m2);
  std::vector<std::string> log2;
  PassManager pm2;
  ASSERT_FALSE(bool(pm2.addPipeline("cse")));
  pm2.addInstrumentation(std::make_unique<Recorder>(log2));
  auto e2 = pm2.run(*m2, d.diag);
  ASSERT_FALSE(bool(e2)) << llvm::toString(std::move(e2));
  EXPECT_EQ(log2, (std::vector<std::string>{"before cse @f", "after cse @f", "before cse @g",
                                            "after cse @g"}));
}

TEST(PassManager, VerifyEachCatchesBrokenIR) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager pm; // verifyEach is on by default
  auto p = std::make_unique<BreakTypesPass>();
  p->configure("break-types", {});
  pm.addPass(std::move(p));
  ASSERT_FALSE(bool(pm.addPipeline("dce")));
  Diags d;
  auto e = pm.run(*m, d.diag);
  ASSERT_TRUE(bool(e));
  std::string msg = llvm::toString(std::move(e));
  EXPECT_NE(msg.find("'break-types'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not verify"), std::string::npos) << msg;
  // The verifier said what is wrong, on the broken op.
  ASSERT_FALSE(d.errors.empty());
  bool mentionsType = false;
  for (auto &s : d.errors)
    mentionsType |= s.find("tensor<7 x 7 x f32>") != std::string::npos;
  EXPECT_TRUE(mentionsType) << d.errors.front();
  // The statistic was counted even though the run failed.
  EXPECT_EQ(pm.getPasses()[0]->getStatistics()[0]->value, 1);
  // The pipeline stopped before dce.
  EXPECT_EQ(pm.getPasses()[1]->getStatistics()[0]->value, 0);
}

TEST(PassManager, WithoutVerifyEachTheBrokenIRGoesThrough) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager::Options o;
  o.verifyEach = false;
  PassManager pm(o);
  auto p = std::make_unique<BreakTypesPass>();
  p->configure("break-types", {});
  pm.addPass(std::move(p));
  Diags d;
  auto e = pm.run(*m, d.diag);
  EXPECT_FALSE(bool(e)) << llvm::toString(std::move(e));
  DiagEngine quiet;
  quiet.setHandler([](const Diagnostic &) {});
  EXPECT_FALSE(verifyModule(*m, quiet));
}

TEST(PassManager, PassErrorsAndDiagnosticsFailTheRun) {
  {
    auto m = mustParse(kRedundant);
    ASSERT_TRUE(m);
    PassManager pm;
    auto p = std::make_unique<FailingPass>();
    p->configure("failing", {});
    pm.addPass(std::move(p));
    Diags d;
    auto e = pm.run(*m, d.diag);
    ASSERT_TRUE(bool(e));
    std::string msg = llvm::toString(std::move(e));
    EXPECT_NE(msg.find("'failing'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("internal trouble"), std::string::npos) << msg;
  }
  {
    auto m = mustParse(kRedundant);
    ASSERT_TRUE(m);
    PassManager pm;
    auto p = std::make_unique<DiagnosingPass>();
    p->configure("diagnosing", {});
    pm.addPass(std::move(p));
    Diags d;
    auto e = pm.run(*m, d.diag);
    ASSERT_TRUE(bool(e));
    std::string msg = llvm::toString(std::move(e));
    EXPECT_NE(msg.find("'diagnosing'"), std::string::npos) << msg;
    ASSERT_EQ(d.errors.size(), 1u);
    EXPECT_EQ(d.errors[0], "'neg' op cannot handle this");
  }
}

TEST(PassManager, TimingReportNamesEveryPass) {
  auto m = mustParse(kRedundant);
  ASSERT_TRUE(m);
  PassManager::Options o;
  o.timing = true;
  PassManager pm(o);
  std::string out;
  llvm::raw_string_ostream os(out);
  pm.setOutput(&os);
  ASSERT_FALSE(bool(pm.addPipeline("cse,dce")));
  Diags d;
  ASSERT_FALSE(bool(pm.run(*m, d.diag)));
  os.flush();
  EXPECT_NE(out.find("timing report"), std::string::npos) << out;
  EXPECT_NE(out.find(" cse\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" dce\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Total"), std::string::npos) << out;
}
