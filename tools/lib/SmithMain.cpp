//===- SmithMain.cpp - The moe-smith driver -------------------------------===//
//
//   moe-smith --seed N [--count M] [-o DIR]        write programs
//   moe-smith check --seed N --count M [--jobs J] [--time-limit S] [--out DIR]
//   moe-smith reduce FILE --check NAME [--out DIR] reduce a failing file
//   moe-smith coverage --seed N --count M          ops and types generated
//
// `check` runs every program's checks (tools/lib/SmithCheck.h) in a child
// process of its own, J at a time, so a crash or a hang (--program-timeout)
// is a failure of the check it happened in, not of the driver. Each failure
// is reduced (tools/lib/SmithReduce.h; one program per distinct failure:
// same check, kind and pass), and written to --out as a lit test whose RUN
// lines reproduce it; exit 1 when anything failed.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/SmithMain.h"
#include "tools/lib/Fail.h"
#include "tools/lib/SmithCheck.h"
#include "tools/lib/SmithGen.h"
#include "tools/lib/SmithReduce.h"

#include "ir/Error.h"
#include "ir/Printer.h"

#include "fmt/format.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <chrono>
#include <csignal>
#include <map>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace moe;
namespace cl = llvm::cl;

namespace {

struct SmithFlags {
  cl::OptionCategory cat{"moe-smith options"};
  cl::list<std::string> positional{cl::Positional, cl::desc("[check|reduce FILE|coverage]"),
                                   cl::cat(cat)};
  cl::opt<uint64_t> seed{"seed", cl::desc("First seed"), cl::init(1), cl::cat(cat)};
  cl::opt<unsigned> count{"count", cl::desc("Number of programs (seeds seed .. seed+count-1)"),
                          cl::init(1), cl::cat(cat)};
  cl::opt<std::string> output{"o", cl::desc("Write the programs here as smith-<seed>.moe "
                                            "(default: standard output)"),
                              cl::value_desc("DIR"), cl::cat(cat)};
  cl::opt<unsigned> jobs{"jobs", cl::desc("Programs checked at once (child processes)"),
                         cl::init(1), cl::cat(cat)};
  cl::opt<double> timeLimit{"time-limit", cl::desc("check: start no program after this many "
                                                   "seconds (0: no limit)"),
                            cl::init(0), cl::cat(cat)};
  cl::opt<double> programTimeout{"program-timeout",
                                 cl::desc("A program whose checks take longer fails as a "
                                          "timeout (seconds)"),
                                 cl::init(120), cl::cat(cat)};
  cl::opt<std::string> out{"out", cl::desc("check/reduce: write reduced failures here as lit "
                                           "tests (default: smith-failures)"),
                           cl::value_desc("DIR"), cl::init("smith-failures"), cl::cat(cat)};
  cl::opt<bool> noReduce{"no-reduce", cl::desc("check: report failures without reducing them"),
                         cl::cat(cat)};
  cl::opt<double> reduceTime{"reduce-time", cl::desc("Seconds spent reducing each failure"),
                             cl::init(180), cl::cat(cat)};
  cl::opt<bool> noJit{"no-jit", cl::desc("check: skip the jit and ranks checks"), cl::cat(cat)};
  cl::opt<unsigned> jitEvery{"jit-every",
                             cl::desc("check: run the jit and ranks checks (which JIT-compile, "
                                      "the costly part) on every N-th seed only"),
                             cl::init(1), cl::cat(cat)};
  cl::opt<std::string> onlyCheck{"check", cl::desc("reduce: the failing check (e.g. "
                                                   "pass:rms-fusion); check: run only this one"),
                                 cl::cat(cat)};
  cl::opt<bool> verbose{"v", cl::desc("check: one line per program"), cl::cat(cat)};
  // Generator switches: each defaults to generating the pattern.
  cl::opt<bool> noRankLocal{"no-rank-local-operands",
                            cl::desc("Generate no rank-local operand after an all_reduce"),
                            cl::cat(cat)};
  cl::opt<bool> noStatic{"no-static-captures", cl::desc("Generate no static captures"),
                         cl::cat(cat)};
  cl::opt<bool> noSpmd{"no-spmd", cl::desc("Generate no SPMD (hand-split) functions"),
                       cl::cat(cat)};
  cl::opt<bool> noCoincidence{
      "no-capture-coincidences",
      cl::desc("Generate no static capture whose token count equals top-k or the expert count"),
      cl::cat(cat)};

  cl::opt<bool> noNarrowAllReduce{
      "no-narrow-allreduce",
      cl::desc("Generate no all_reduce of f16/bf16 values (the JIT's all_reduce is f32-only "
               "until issue #15's f16/bf16 all_reduce lands)"),
      cl::cat(cat)};

  SmithOptions genOptions() const {
    SmithOptions o;
    o.rankLocalOperands = !noRankLocal;
    o.staticCaptures = !noStatic;
    o.spmd = !noSpmd;
    o.captureCoincidences = !noCoincidence;
    o.narrowAllReduce = !noNarrowAllReduce;
    return o;
  }
};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

//===----------------------------------------------------------------------===//
// Checks in child processes
//===----------------------------------------------------------------------===//

/// A check run in a child process.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::string buf;
  std::chrono::steady_clock::time_point start;
  uint64_t seed = 0;
  std::string text;
};

void writeAll(int fd, const std::string &s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0)
      return;
    off += n;
  }
}

Child spawn(const std::string &text, SmithCheckOptions o) {
  Child c;
  int p[2];
  if (::pipe(p) != 0)
    return c;
  llvm::outs().flush();
  llvm::errs().flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    int fd = p[1];
    o.progress = [fd](const std::string &name) { writeAll(fd, "C " + name + "\n"); };
    auto f = smithCheck(text, o);
    if (f)
      writeAll(fd, fmt::format("F\t{}\t{}\t{}\n{}", f->check, f->kind, f->syms,
                               f->message.substr(0, 4000)));
    else
      writeAll(fd, "O\n");
    ::close(fd);
    ::_exit(0);
  }
  ::close(p[1]);
  c.pid = pid;
  c.fd = p[0];
  c.start = std::chrono::steady_clock::now();
  return c;
}

/// Reads what is available; true at end of file.
bool drain(Child &c) {
  char tmp[4096];
  ssize_t n = ::read(c.fd, tmp, sizeof tmp);
  if (n > 0) {
    c.buf.append(tmp, n);
    return false;
  }
  return n == 0 || errno != EINTR;
}

/// The child's verdict, once it has exited (or was killed: `timedOut`).
std::optional<SmithFailure> verdict(Child &c, bool timedOut, double timeout) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  ::close(c.fd);
  std::string last = "driver";
  llvm::StringRef rest(c.buf);
  while (!rest.empty()) {
    auto [line, tail] = rest.split('\n');
    if (line.starts_with("C ")) {
      last = line.drop_front(2).str();
    } else if (line.starts_with("F\t")) {
      llvm::SmallVector<llvm::StringRef, 4> f;
      line.split(f, '\t');
      return SmithFailure{f[1].str(), f[2].str(), tail.str(), f.size() > 3 ? f[3].str() : ""};
    } else if (line == "O" && !timedOut && WIFEXITED(status)) {
      return std::nullopt;
    }
    rest = tail;
  }
  if (timedOut)
    return SmithFailure{last, "timeout", fmt::format("no verdict after {:.0f} s", timeout), ""};
  if (WIFSIGNALED(status))
    return SmithFailure{last, "crash",
                        fmt::format("killed by signal {} ({})", WTERMSIG(status),
                                    strsignal(WTERMSIG(status))),
                        ""};
  return SmithFailure{last, "crash", fmt::format("exited {} without a verdict",
                                                 WEXITSTATUS(status)), ""};
}

/// Runs the children of `texts` J at a time; calls `done` with each verdict.
void runAll(unsigned jobs, unsigned jitEvery, double timeout, double timeLimit,
            const std::function<std::optional<std::pair<uint64_t, std::string>>()> &next,
            const SmithCheckOptions &o,
            const std::function<void(const Child &, std::optional<SmithFailure>)> &done) {
  std::vector<Child> running;
  auto t0 = std::chrono::steady_clock::now();
  bool more = true;
  while (more || !running.empty()) {
    while (more && running.size() < std::max(1u, jobs) &&
           (timeLimit <= 0 || since(t0) < timeLimit)) {
      auto n = next();
      if (!n) {
        more = false;
        break;
      }
      SmithCheckOptions po = o;
      po.jit &= jitEvery <= 1 || n->first % jitEvery == 0;
      Child c = spawn(n->second, po);
      c.seed = n->first;
      c.text = n->second;
      if (c.pid < 0) {
        done(c, SmithFailure{"driver", "error", "cannot fork", ""});
        continue;
      }
      running.push_back(std::move(c));
    }
    if (timeLimit > 0 && since(t0) >= timeLimit)
      more = false;
    if (running.empty())
      break;
    std::vector<pollfd> fds;
    for (auto &c : running)
      fds.push_back({c.fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 200);
    for (size_t i = running.size(); i-- > 0;) {
      Child &c = running[i];
      bool eof = (fds[i].revents & (POLLIN | POLLHUP)) && drain(c);
      bool late = since(c.start) > timeout;
      if (!eof && !late)
        continue;
      if (late && !eof)
        ::kill(c.pid, SIGKILL);
      if (late && !eof)
        while (!drain(c)) {
        }
      auto v = verdict(c, late && !eof, timeout);
      done(c, std::move(v));
      running.erase(running.begin() + i);
    }
  }
}

/// One check in a child, waited for.
std::optional<SmithFailure> checkInChild(const std::string &text, const SmithCheckOptions &o,
                                         double timeout) {
  std::optional<SmithFailure> result;
  bool given = false;
  runAll(1, 1, timeout, 0,
         [&]() -> std::optional<std::pair<uint64_t, std::string>> {
           if (given)
             return std::nullopt;
           given = true;
           return std::make_pair(uint64_t(0), text);
         },
         o, [&](const Child &, std::optional<SmithFailure> f) { result = std::move(f); });
  return result;
}

//===----------------------------------------------------------------------===//
// Failures: signature, reduction, lit test
//===----------------------------------------------------------------------===//

/// The pass a pipeline failure names (`pass 'rms-fusion' ...`), if any.
std::string failingPass(const std::string &msg) {
  size_t p = msg.find("pass '");
  if (p == std::string::npos)
    return "";
  size_t e = msg.find('\'', p + 6);
  return e == std::string::npos ? "" : msg.substr(p + 6, e - p - 6);
}

/// What makes two failures the same kind of failure.
std::string signature(const SmithFailure &f) {
  return f.check + "/" + f.kind + "/" + failingPass(f.message);
}

std::string fileName(const SmithFailure &f, uint64_t seed) {
  std::string n = f.check + "-" + f.kind + "-seed" + std::to_string(seed);
  for (char &c : n)
    if (!isalnum((unsigned char)c) && c != '-')
      c = '-';
  return n;
}

std::string commentLines(const std::string &s) {
  std::string out;
  for (auto line : llvm::split(llvm::StringRef(s).rtrim(), '\n'))
    out += "//   " + line.str() + "\n";
  return out;
}

llvm::Error writeFile(const std::string &path, const std::string &text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return err(fmt::format("cannot write '{}': {}", path, ec.message()));
  os << text;
  return llvm::Error::success();
}

/// Reduces the failing `text` and writes DIR/<name>.moe; the path.
llvm::Expected<std::string> reduceAndWrite(const SmithFlags &flags, const std::string &text,
                                           const SmithFailure &fail, uint64_t seed,
                                           const SmithCheckOptions &base, bool fromSeed) {
  SmithCheckOptions o = base;
  o.only = fail.check;
  std::string sig = signature(fail);
  double timeout = std::min<double>(flags.programTimeout, fail.kind == "timeout" ? 1e9 : 60);
  ReduceStats st;
  std::string reduced = text;
  SmithFailure last = fail;
  if (!flags.noReduce)
    reduced = smithReduce(
        text,
        [&](const std::string &cand) {
          auto f = checkInChild(cand, o, timeout);
          if (!f || signature(*f) != sig)
            return false;
          last = *f;
          return true;
        },
        flags.reduceTime, st);
  if (auto ec = llvm::sys::fs::create_directories(flags.out))
    return err(fmt::format("cannot create '{}': {}", flags.out.getValue(), ec.message()));
  std::string name = fileName(last, seed);
  std::string head = fmt::format(
      "// moe-smith: {} ({}), reduced from {} ops to {} in {} tries.\n{}"
      "// Failure:\n{}",
      fromSeed ? fmt::format("seed {}", seed) : std::string("a given file"), last.check,
      st.opsBefore ? st.opsBefore : smithNumOps(text), smithNumOps(reduced), st.tries,
      fromSeed ? fmt::format("// Unreduced: moe-smith --seed {} (check {}).\n", seed,
                             last.check)
               : std::string(),
      commentLines(last.message));
  head += "//\n";
  for (auto &l : smithRunLines(reduced, last))
    head += "// RUN: " + l + "\n";
  head += "\n";
  llvm::SmallString<256> path(flags.out);
  llvm::sys::path::append(path, name + ".moe");
  if (auto e = writeFile(path.str().str(), head + reduced))
    return e;
  llvm::SmallString<256> orig(flags.out);
  llvm::sys::path::append(orig, name + ".orig.moe");
  if (auto e = writeFile(orig.str().str(), text))
    return e;
  return path.str().str();
}

//===----------------------------------------------------------------------===//
// Modes
//===----------------------------------------------------------------------===//

int generate(const SmithFlags &flags) {
  if (!flags.output.empty())
    if (auto ec = llvm::sys::fs::create_directories(flags.output))
      return fail("moe-smith", err(fmt::format("cannot create '{}': {}",
                                               flags.output.getValue(), ec.message())));
  for (uint64_t s = flags.seed; s < flags.seed + flags.count; ++s) {
    auto p = generateProgram(s, flags.genOptions());
    if (!p)
      return fail("moe-smith", p.takeError());
    std::string text = toString(*p->module);
    if (flags.output.empty()) {
      llvm::outs() << (s == flags.seed ? "" : "// -----\n") << "// moe-smith --seed " << s
                   << "\n" << text;
      continue;
    }
    llvm::SmallString<256> path(flags.output);
    llvm::sys::path::append(path, fmt::format("smith-{}.moe", s));
    if (auto e = writeFile(path.str().str(), text))
      return fail("moe-smith", std::move(e));
  }
  return 0;
}

int coverage(const SmithFlags &flags) {
  std::map<std::string, unsigned> ops, types, shapes;
  for (uint64_t s = flags.seed; s < flags.seed + flags.count; ++s) {
    auto p = generateProgram(s, flags.genOptions());
    if (!p)
      return fail("moe-smith", p.takeError());
    const Function &f = *p->module->functions[0];
    for (auto &op : f.getBody())
      ++ops[op.getName().str()];
    for (auto *a : f.getArguments())
      if (a->isParam())
        ++types[elemTypeName(a->getType().elem).str()];
    ++shapes[p->spmd ? "spmd" : p->staticCapture ? "static-capture" : "symbolic"];
  }
  unsigned missing = 0;
  for (auto &info : allOps())
    if (!ops.count(info.name.str())) {
      llvm::outs() << "missing op: " << info.name << "\n";
      ++missing;
    }
  for (const char *t : {"f32", "f16", "bf16", "q8_0", "q4_0", "mxfp4"})
    if (!types.count(t)) {
      llvm::outs() << "missing param type: " << t << "\n";
      ++missing;
    }
  for (const char *k : {"spmd", "static-capture", "symbolic"})
    if (!shapes.count(k)) {
      llvm::outs() << "missing function kind: " << k << "\n";
      ++missing;
    }
  llvm::outs() << fmt::format("ops: {} of {} generated\n", ops.size(), allOps().size());
  for (auto &[k, n] : ops)
    llvm::outs() << fmt::format("  {} {}\n", k, n);
  llvm::outs() << "param types:";
  for (auto &[k, n] : types)
    llvm::outs() << fmt::format(" {} {}", k, n);
  llvm::outs() << "\nfunctions:";
  for (auto &[k, n] : shapes)
    llvm::outs() << fmt::format(" {} {}", k, n);
  llvm::outs() << "\n";
  return missing ? 1 : 0;
}

int check(const SmithFlags &flags) {
  SmithCheckOptions o;
  o.jit = !flags.noJit;
  o.only = flags.onlyCheck;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t nextSeed = flags.seed, end = flags.seed + flags.count;
  unsigned checked = 0;
  std::vector<std::tuple<uint64_t, std::string, SmithFailure>> failures;
  std::string genError;
  runAll(
      flags.jobs, flags.jitEvery, flags.programTimeout, flags.timeLimit,
      [&]() -> std::optional<std::pair<uint64_t, std::string>> {
        while (nextSeed < end) {
          uint64_t s = nextSeed++;
          auto p = generateProgram(s, flags.genOptions());
          if (!p) {
            ++checked;
            failures.push_back({s, "", SmithFailure{"generator", "error",
                                                    llvm::toString(p.takeError()), ""}});
            continue;
          }
          return std::make_pair(s, toString(*p->module));
        }
        return std::nullopt;
      },
      o,
      [&](const Child &c, std::optional<SmithFailure> f) {
        ++checked;
        if (flags.verbose)
          llvm::outs() << fmt::format("seed {}: {}\n", c.seed,
                                      f ? f->check + " " + f->kind : std::string("ok"));
        if (f) {
          llvm::outs() << fmt::format("FAIL seed {}: {} ({}): {}\n", c.seed, f->check, f->kind,
                                      llvm::StringRef(f->message).split('\n').first.str());
          failures.push_back({c.seed, c.text, *f});
        }
        llvm::outs().flush();
      });
  double secs = since(t0);
  // One reduction per distinct failure.
  std::map<std::string, std::vector<uint64_t>> bySig;
  for (auto &[s, text, f] : failures) {
    auto &seeds = bySig[signature(f)];
    seeds.push_back(s);
    if (seeds.size() > 1 || text.empty())
      continue;
    auto path = reduceAndWrite(flags, text, f, s, o, true);
    if (!path)
      return fail("moe-smith", path.takeError());
    llvm::outs() << fmt::format("reduced seed {} ({}, {}): {}\n", s, f.check, f.kind, *path);
  }
  llvm::outs() << fmt::format("moe-smith: checked {} programs (seeds {}..{}) in {:.1f} s: {} "
                              "failure{}, {} distinct\n",
                              checked, flags.seed.getValue(), flags.seed + checked - 1, secs,
                              failures.size(), failures.size() == 1 ? "" : "s", bySig.size());
  for (auto &[sig, seeds] : bySig) {
    std::string list;
    for (size_t i = 0; i < seeds.size() && i < 12; ++i)
      list += (i ? " " : "") + std::to_string(seeds[i]);
    llvm::outs() << fmt::format("  {}: {} program{} (seeds {}{})\n", sig, seeds.size(),
                                seeds.size() == 1 ? "" : "s", list,
                                seeds.size() > 12 ? " ..." : "");
  }
  return failures.empty() ? 0 : 1;
}

int reduceFile(const SmithFlags &flags, const std::string &file) {
  auto buf = llvm::MemoryBuffer::getFileOrSTDIN(file, /*IsText=*/true);
  if (!buf)
    return fail("moe-smith", err(fmt::format("cannot read '{}': {}", file,
                                             buf.getError().message())));
  std::string text = (*buf)->getBuffer().str();
  SmithCheckOptions o;
  o.jit = !flags.noJit;
  o.only = flags.onlyCheck;
  auto f = checkInChild(text, o, flags.programTimeout);
  if (!f) {
    llvm::outs() << "moe-smith: " << file << " passes"
                 << (o.only.empty() ? "" : " check " + o.only) << "\n";
    return 0;
  }
  llvm::outs() << fmt::format("moe-smith: {} fails {} ({}); reducing\n", file, f->check, f->kind);
  auto path = reduceAndWrite(flags, text, *f, 0, o, false);
  if (!path)
    return fail("moe-smith", path.takeError());
  llvm::outs() << "reduced: " << *path << "\n";
  return 1;
}

} // namespace

int moe::moeSmithMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  SmithFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "moe-smith: random MoE-shaped programs, checked differentially\n\n"
      "  moe-smith --seed N [--count M] [-o DIR]          write programs\n"
      "  moe-smith check --seed N --count M [--jobs J]    check them (reduce failures)\n"
      "  moe-smith reduce FILE --check NAME               reduce a failing file\n"
      "  moe-smith coverage --seed N --count M            ops and types generated\n");
  std::vector<std::string> pos(flags.positional.begin(), flags.positional.end());
  if (pos.empty())
    return generate(flags);
  if (pos[0] == "check" && pos.size() == 1)
    return check(flags);
  if (pos[0] == "coverage" && pos.size() == 1)
    return coverage(flags);
  if (pos[0] == "reduce" && pos.size() == 2)
    return reduceFile(flags, pos[1]);
  return fail("moe-smith", err(fmt::format("unknown mode '{}' (expected check, reduce FILE or "
                                           "coverage)",
                                           llvm::join(pos, " "))));
}
