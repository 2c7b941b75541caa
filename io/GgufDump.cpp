//===- GgufDump.cpp - Printing GGUF files ---------------------------------===//
#include "io/GgufDump.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <cstdio>
#include <cstdlib>

using namespace moe::gguf;

namespace {

/// The shortest %g text that reads back as the same value.
std::string shortestFloat(double d, bool isF32) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (isF32 ? std::strtof(buf, nullptr) == static_cast<float>(d)
              : std::strtod(buf, nullptr) == d)
      break;
  }
  return buf;
}

void printString(llvm::raw_ostream &os, llvm::StringRef s, unsigned maxBytes) {
  bool cut = s.size() > maxBytes;
  os << '"';
  for (char c : s.take_front(maxBytes)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\')
      os << '\\' << c;
    else if (u < 0x20 || u == 0x7F)
      os << "\\x" << llvm::format_hex_no_prefix(u, 2);
    else
      os << c; // UTF-8 passes through
  }
  os << '"';
  if (cut)
    os << "... (" << s.size() << " bytes)";
}

} // namespace

std::string moe::gguf::valueTypeText(const Value &v) {
  if (!v.isArray())
    return valueTypeName(v.type()).str();
  return ("array<" + valueTypeName(v.elementType()) + ">").str();
}

void moe::gguf::printValue(llvm::raw_ostream &os, const Value &v,
                           unsigned maxElements, unsigned maxStringBytes) {
  if (std::optional<int64_t> s = v.asSigned()) {
    os << *s;
  } else if (std::optional<uint64_t> u = v.asUnsigned()) {
    os << *u;
  } else if (std::optional<double> d = v.asFloat()) {
    os << shortestFloat(*d, v.type() == ValueType::F32);
  } else if (std::optional<bool> b = v.asBool()) {
    os << (*b ? "true" : "false");
  } else if (std::optional<llvm::StringRef> str = v.asString()) {
    printString(os, *str, maxStringBytes);
  } else {
    os << '[';
    uint64_t shown = std::min<uint64_t>(v.size(), maxElements);
    for (uint64_t i = 0; i < shown; ++i) {
      os << (i ? ", " : "");
      printValue(os, v.element(i), maxElements, maxStringBytes);
    }
    if (shown < v.size())
      os << (shown ? ", " : "") << "... " << (v.size() - shown) << " more";
    os << ']';
  }
}

void moe::gguf::dump(llvm::raw_ostream &os, const GgufFile &file) {
  os << "file: " << file.name() << "\n";
  os << "version: " << file.version() << "\n";
  os << "alignment: " << file.alignment() << "\n";
  os << "data offset: " << file.dataOffset() << "\n";
  os << "metadata: " << file.metadata().size() << " keys\n";
  for (const KeyValue &kv : file.metadata()) {
    os << "  " << kv.key << ": " << valueTypeText(kv.value);
    if (kv.value.isArray())
      os << "[" << kv.value.size() << "]";
    os << " = ";
    printValue(os, kv.value);
    os << "\n";
  }
  os << "tensors: " << file.tensors().size() << "\n";
  for (const TensorInfo &t : file.tensors()) {
    os << "  " << t.name << ": " << t.typeName() << " [";
    llvm::ListSeparator x(" x ");
    for (int64_t d : t.dims())
      os << x << d;
    os << "] ne [";
    llvm::ListSeparator comma(", ");
    for (int64_t n : t.neDims())
      os << comma << n;
    os << "], " << t.nbytes << " bytes at data offset " << t.offset
       << " (file offset " << file.dataOffset() + t.offset << ")\n";
  }
}
