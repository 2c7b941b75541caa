//===- DiagVerifier.cpp - --verify-diagnostics ----------------------------===//
#include "tools/lib/DiagVerifier.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace moe;

static const char *severityName(Severity s) {
  static const char *n[] = {"error", "warning", "remark", "note"};
  return n[(int)s];
}

DiagVerifier::DiagVerifier(llvm::SourceMgr &sm, unsigned bufferId)
    : sm(sm), bufferId(bufferId) {
  llvm::StringRef buf = sm.getMemoryBuffer(bufferId)->getBuffer();
  static const std::pair<const char *, Severity> kinds[] = {
      {"expected-error", Severity::Error}, {"expected-warning", Severity::Warning},
      {"expected-remark", Severity::Remark}, {"expected-note", Severity::Note}};
  size_t pos = 0;
  while ((pos = buf.find("expected-", pos)) != llvm::StringRef::npos) {
    llvm::StringRef rest = buf.substr(pos);
    const char *start = buf.data() + pos;
    pos += 9;
    Severity sev;
    llvm::StringRef after;
    bool found = false;
    for (auto &[k, s] : kinds)
      if (rest.starts_with(k)) {
        sev = s;
        after = rest.drop_front(strlen(k));
        found = true;
      }
    if (!found)
      continue;
    unsigned line = sm.getLineAndColumn(llvm::SMLoc::getFromPointer(start), bufferId).first;
    after = after.ltrim(" \t");
    if (after.consume_front("@")) {
      int sign = after.consume_front("+") ? 1 : after.consume_front("-") ? -1 : 0;
      unsigned n = 0;
      size_t digits = after.find_first_not_of("0123456789");
      if (digits == 0 || after.substr(0, digits).getAsInteger(10, n)) {
        sm.PrintMessage(llvm::SMLoc::getFromPointer(start), llvm::SourceMgr::DK_Error,
                        "expected a line offset after '@'");
        annotationErrors = true;
        continue;
      }
      after = after.drop_front(digits);
      line = sign == 0 ? n : sign > 0 ? line + n : line - n;
      after = after.ltrim(" \t");
    }
    if (!after.consume_front("{{")) {
      sm.PrintMessage(llvm::SMLoc::getFromPointer(start), llvm::SourceMgr::DK_Error,
                      "expected '{{' to start the expected message");
      annotationErrors = true;
      continue;
    }
    size_t end = after.find("}}");
    if (end == llvm::StringRef::npos) {
      sm.PrintMessage(llvm::SMLoc::getFromPointer(start), llvm::SourceMgr::DK_Error,
                      "expected '}}' to end the expected message");
      annotationErrors = true;
      continue;
    }
    expected.push_back(Expected{sev, line, after.substr(0, end).str(),
                                llvm::SMLoc::getFromPointer(start)});
  }
}

bool DiagVerifier::verify() {
  bool ok = !annotationErrors;
  for (auto &d : seen) {
    unsigned line = 0;
    if (d.loc.isValid() && sm.FindBufferContainingLoc(d.loc) == bufferId)
      line = sm.getLineAndColumn(d.loc, bufferId).first;
    bool matched = false;
    for (auto &e : expected)
      if (!e.matched && e.severity == d.severity && e.line == line &&
          llvm::StringRef(d.message).contains(e.text)) {
        e.matched = matched = true;
        break;
      }
    if (!matched) {
      ok = false;
      std::string msg = std::string("unexpected ") + severityName(d.severity) + ": " + d.message;
      if (line)
        sm.PrintMessage(llvm::errs(), d.loc, llvm::SourceMgr::DK_Error, msg);
      else
        llvm::errs() << "error: " << msg << "\n";
    }
  }
  for (auto &e : expected)
    if (!e.matched) {
      ok = false;
      sm.PrintMessage(llvm::errs(), e.loc, llvm::SourceMgr::DK_Error,
                      std::string("expected ") + severityName(e.severity) + " \"" + e.text +
                          "\" was not produced on line " + std::to_string(e.line));
    }
  return ok;
}
