//===- Npy.cpp - NumPy .npy array files -----------------------------------===//
//
// The .npy layout (numpy/lib/format.py, "NEP 1"):
//
//   "\x93NUMPY" major minor   6 + 2 bytes
//   header length             uint16 LE (v1.0) or uint32 LE (v2.0, v3.0)
//   header                    a Python dict literal, ASCII/latin-1 (v3.0:
//                             UTF-8), space-padded, ending in '\n'
//   data                      the elements, C order unless fortran_order
//
// Reading parses the dict with a small recursive-descent parser for just the
// literal forms numpy writes (strings, True/False, tuples of ints), rather
// than anything like Python's eval. Writing reproduces numpy.save byte for
// byte, including its spare spaces after the dict (room for the first dim to
// grow in place) and its 64-byte alignment of the data.
//
//===----------------------------------------------------------------------===//
#include "runtime/Npy.h"
#include "ir/Error.h"

#include "runtime/Formats.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SwapByteOrder.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

using namespace moe;

using llvm::StringRef;

// .npy data is little-endian and used in place.
static_assert(!llvm::sys::IsBigEndianHost, "moe needs a little-endian host");

namespace {

constexpr StringRef kMagic("\x93NUMPY", 6);
constexpr size_t kAlign = 64;           // numpy's ARRAY_ALIGN
constexpr size_t kGrowthAxisDigits = 21; // numpy's GROWTH_AXIS_MAX_DIGITS

llvm::Error fail(StringRef name, const llvm::Twine &msg) {
  return err((name + ": " + msg).str());
}

std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  // Python's tuple repr: "()", "(3,)", "(3, 4)".
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// The supported types, in canonical spelling, and their sizes.
constexpr struct {
  StringRef descr;
  int64_t size;
} kTypes[] = {{"<f2", 2}, {"<f4", 4}, {"<f8", 8}, {"<i4", 4},
              {"<i8", 8}, {"|u1", 1}, {"|i1", 1}, {"|b1", 1}};

/// Maps a descr to its canonical spelling. The byte-order mark is irrelevant
/// for 1-byte types (numpy writes '|'); wider ones must be little-endian
/// ('<', or '=' native, little-endian on every host moe runs on), since the
/// data is used as it is.
llvm::Expected<std::string> canonicalDescr(StringRef descr, StringRef name) {
  const char order = descr.empty() ? 0 : descr[0];
  for (const auto &t : kTypes) {
    if (descr.size() != 3 || descr.substr(1) != t.descr.substr(1))
      continue;
    if (t.size == 1 && llvm::is_contained(StringRef("<>|="), order))
      return t.descr.str();
    if (order == '<' || order == '=')
      return t.descr.str();
    if (order == '>')
      return fail(name, "big-endian data ('" + descr + "') is not supported");
  }
  return fail(name, "unsupported descr '" + descr + "'");
}

/// Product of the dims, or nullopt if one is negative or it overflows.
std::optional<int64_t> product(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || llvm::MulOverflow(n, d, n))
      return std::nullopt;
  return n;
}

/// Bytes of data an array of a canonical descr and this shape has.
llvm::Expected<int64_t> dataBytes(StringRef descr,
                                  llvm::ArrayRef<int64_t> shape,
                                  StringRef name) {
  const std::optional<int64_t> count = product(shape);
  int64_t bytes;
  if (!count || llvm::MulOverflow(*count, npyItemSize(descr), bytes))
    return fail(name, "invalid or too large shape " + formatShape(shape));
  return bytes;
}

/// Recursive-descent parser of the header dict, reading from `rest`. Each
/// method returns false after recording what went wrong in `error`.
class HeaderParser {
public:
  explicit HeaderParser(StringRef text) : text(text), rest(text) {}

  std::string descr, error;
  bool fortranOrder = false;
  std::vector<int64_t> shape;

  bool parse() {
    bool seenDescr = false, seenOrder = false, seenShape = false;
    if (!expect('{'))
      return false;
    while (!peekIs('}')) {
      std::string key;
      if (!parseString(key) || !expect(':'))
        return false;
      bool ok;
      if (key == "descr" && !seenDescr && peekIs('['))
        ok = failAt("structured dtypes (a list descr) are not supported");
      else if (key == "descr" && !seenDescr)
        ok = seenDescr = parseString(descr);
      else if (key == "fortran_order" && !seenOrder)
        ok = seenOrder = parseBool();
      else if (key == "shape" && !seenShape)
        ok = seenShape = parseShape();
      else
        ok = failAt("unexpected or repeated key '" + key + "'");
      if (!ok || (!peekIs('}') && !expect(',')))
        return false;
    }
    rest = rest.drop_front().ltrim(kSpace);
    if (!rest.empty())
      return failAt("trailing characters after the dict");
    if (!seenDescr || !seenOrder || !seenShape)
      return failAt("the dict needs the keys 'descr', 'fortran_order' and "
                    "'shape'");
    return true;
  }

private:
  static constexpr StringRef kSpace = " \t\r\n";
  StringRef text, rest;

  bool failAt(const llvm::Twine &msg) {
    const size_t offset = text.size() - rest.size();
    error = (msg + " at offset " + llvm::Twine(offset)).str();
    return false;
  }

  bool peekIs(char c) {
    rest = rest.ltrim(kSpace);
    return rest.starts_with(StringRef(&c, 1));
  }

  bool expect(char c) {
    if (!peekIs(c))
      return failAt(std::string("expected '") + c + "'");
    rest = rest.drop_front();
    return true;
  }

  /// A quoted string. numpy never writes escapes, and a backslash is in no
  /// valid key or descr, so one is kept and rejected later as such.
  bool parseString(std::string &out) {
    rest = rest.ltrim(kSpace);
    if (!rest.starts_with("'") && !rest.starts_with("\""))
      return failAt("expected a quoted string");
    const size_t end = rest.find(rest[0], 1);
    if (end == StringRef::npos)
      return failAt("unterminated string");
    out = rest.slice(1, end).str();
    rest = rest.drop_front(end + 1);
    return true;
  }

  bool parseBool() {
    rest = rest.ltrim(kSpace);
    fortranOrder = rest.consume_front("True");
    if (!fortranOrder && !rest.consume_front("False"))
      return failAt("expected True or False");
    return true;
  }

  /// A non-negative decimal integer; Python 2's long suffix 'L' is allowed.
  bool parseDim(int64_t &out) {
    rest = rest.ltrim(kSpace);
    uint64_t v;
    if (rest.empty() || !llvm::isDigit(rest[0]))
      return failAt("expected a non-negative integer dim");
    if (rest.consumeInteger(10, v) || v > uint64_t(INT64_MAX))
      return failAt("dim too large");
    rest.consume_front("L");
    out = static_cast<int64_t>(v);
    return true;
  }

  /// A Python tuple of dims: "()", "(3,)", "(3, 4)" or "(3, 4,)". "(3)" is
  /// an int, not a tuple, and is rejected as numpy does.
  bool parseShape() {
    if (!expect('('))
      return false;
    bool sawComma = false;
    while (!peekIs(')')) {
      int64_t d = 0;
      if (!parseDim(d))
        return false;
      shape.push_back(d);
      if (peekIs(')'))
        break;
      if (!expect(','))
        return false;
      sawComma = true;
    }
    rest = rest.drop_front(); // ')'
    if (shape.size() == 1 && !sawComma)
      return failAt("shape must be a tuple, e.g. (3,)");
    return true;
  }
};

template <typename T> T load(const NpyArray &a, int64_t i) {
  T v;
  std::memcpy(&v, a.data.data() + i * sizeof(T), sizeof(T));
  return v;
}

std::string formatValue(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

llvm::Error conversionError(const NpyArray &a, StringRef to,
                            const llvm::Twine &why) {
  return fail("cannot convert a '" + a.descr + "' array to " + to.str(), why);
}

/// Element i as a double: exact for every supported type but 64-bit ints
/// beyond 2^53, which only npyToI32 reads, through loadInt.
double loadFloat(const NpyArray &a, int64_t i) {
  if (a.descr == "<f2")
    return f16ToF32(load<uint16_t>(a, i));
  return a.descr == "<f4" ? load<float>(a, i) : load<double>(a, i);
}

/// Element i of an integer or boolean array, widened to int64.
int64_t loadInt(const NpyArray &a, int64_t i) {
  if (a.descr == "<i4" || a.descr == "<i8")
    return a.descr == "<i4" ? load<int32_t>(a, i) : load<int64_t>(a, i);
  if (a.descr == "|i1")
    return load<int8_t>(a, i);
  const uint8_t v = load<uint8_t>(a, i);
  return a.descr == "|b1" ? v != 0 : v; // numpy reads any non-zero as True
}

bool isFloatDescr(StringRef d) {
  return d == "<f2" || d == "<f4" || d == "<f8";
}

/// NpyArray is a plain struct a caller may fill in by hand: check that its
/// shape and data agree before indexing the data by the shape.
llvm::Error checkConsistent(const NpyArray &a, StringRef to) {
  const int64_t n = a.numElements(), size = npyItemSize(a.descr);
  if (size == 0)
    return conversionError(a, to, "unsupported type");
  if (n < 0 || a.data.size() % size || a.data.size() / size != uint64_t(n))
    return conversionError(a, to,
                           "shape " + formatShape(a.shape) + " and " +
                               llvm::Twine(a.data.size()) +
                               " data bytes disagree");
  return llvm::Error::success();
}

/// numpy.save's header for a canonical descr and a valid shape.
std::string buildHeader(StringRef descr, llvm::ArrayRef<int64_t> shape) {
  // numpy's _write_array_header: the dict with sorted keys, then spaces so
  // the first dim can grow to 21 digits in place.
  std::string dict = "{'descr': '" + descr.str() +
                     "', 'fortran_order': False, 'shape': " +
                     formatShape(shape) + ", }";
  if (!shape.empty())
    dict.append(kGrowthAxisDigits - std::to_string(shape[0]).size(), ' ');

  // numpy's _wrap_header: pad with spaces and a final '\n' so the data
  // starts on a 64-byte boundary. As in numpy, an already aligned header
  // still gets 64 spaces (the padding is 1..64, never 0). v1.0 stores the
  // length in 16 bits; past that, v2.0 in 32.
  const size_t hlen = dict.size() + 1;
  auto padFor = [&](size_t lenSize) {
    return kAlign - (kMagic.size() + 2 + lenSize + hlen) % kAlign;
  };
  const bool v1 = hlen + padFor(2) <= 0xFFFF;
  const size_t lenSize = v1 ? 2 : 4;
  const size_t pad = padFor(lenSize);
  const uint64_t total = hlen + pad;

  std::string out = kMagic.str();
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < lenSize; ++i)
    out += static_cast<char>((total >> (8 * i)) & 0xFF);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

} // namespace

int64_t NpyArray::numElements() const { return product(shape).value_or(-1); }

int64_t moe::npyItemSize(StringRef descr) {
  for (const auto &t : kTypes)
    if (t.descr == descr)
      return t.size;
  return 0;
}

llvm::Expected<NpyArray> moe::parseNpy(StringRef bytes, StringRef name) {
  // 1. Preamble: magic, version, header length.
  if (!bytes.starts_with(kMagic))
    return fail(name, "not a .npy file (bad magic)");
  if (bytes.size() < 8)
    return fail(name, "truncated preamble");
  const unsigned major = static_cast<uint8_t>(bytes[6]);
  const unsigned minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    return fail(name, "unsupported .npy version " + llvm::Twine(major) + "." +
                          llvm::Twine(minor));
  const size_t lenSize = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + lenSize)
    return fail(name, "truncated preamble");
  namespace endian = llvm::support::endian;
  const size_t headerLen = major == 1 ? endian::read16le(bytes.data() + 8)
                                      : endian::read32le(bytes.data() + 8);
  const size_t dataStart = 8 + lenSize + headerLen;
  if (dataStart > bytes.size())
    return fail(name, "truncated header: expected " + llvm::Twine(headerLen) +
                          " bytes, found " +
                          llvm::Twine(bytes.size() - 8 - lenSize));

  // 2. The dict.
  HeaderParser h(bytes.slice(8 + lenSize, dataStart));
  if (!h.parse())
    return fail(name, "malformed header: " + h.error);
  if (h.fortranOrder)
    return fail(name, "fortran_order arrays are not supported (save a "
                      "C-order array, e.g. np.ascontiguousarray)");
  auto descr = canonicalDescr(h.descr, name);
  if (!descr)
    return descr.takeError();

  // 3. The data: its size from the shape, checked against the file before
  // anything is allocated.
  auto expected = dataBytes(*descr, h.shape, name);
  if (!expected)
    return expected.takeError();
  const uint64_t found = bytes.size() - dataStart;
  if (found < static_cast<uint64_t>(*expected))
    return fail(name, "truncated data: expected " + llvm::Twine(*expected) +
                          " bytes, found " + llvm::Twine(found));
  if (found > static_cast<uint64_t>(*expected))
    return fail(name, "shape/data size mismatch: shape " +
                          formatShape(h.shape) + " of '" + *descr +
                          "' needs " + llvm::Twine(*expected) +
                          " bytes, found " + llvm::Twine(found));

  NpyArray a;
  a.descr = std::move(*descr);
  a.shape = std::move(h.shape);
  a.data.assign(bytes.bytes_begin() + dataStart, bytes.bytes_end());
  return a;
}

llvm::Expected<NpyArray> moe::readNpy(StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf)
    return fail(path, "cannot open: " + buf.getError().message());
  return parseNpy((*buf)->getBuffer(), path);
}

llvm::Expected<std::vector<float>> moe::npyToF32(const NpyArray &a) {
  if (auto err = checkConsistent(a, "f32"))
    return err;
  if (!isFloatDescr(a.descr))
    return conversionError(a, "f32", "not a floating-point type");
  const int64_t n = a.numElements();
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(loadFloat(a, i));
  return out;
}

llvm::Expected<std::vector<int32_t>> moe::npyToI32(const NpyArray &a) {
  if (auto err = checkConsistent(a, "i32"))
    return err;
  const bool fromFloat = isFloatDescr(a.descr);
  const int64_t n = a.numElements();
  std::vector<int32_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    if (fromFloat) {
      // NaN fails both range tests; 2^31 itself is out of range.
      const double v = loadFloat(a, i);
      if (!(v >= -2147483648.0 && v < 2147483648.0) || v != std::trunc(v))
        return conversionError(a, "i32",
                               "element " + llvm::Twine(i) + " is " +
                                   formatValue(v) + ", not an i32 integer");
      out[i] = static_cast<int32_t>(v);
      continue;
    }
    const int64_t v = loadInt(a, i);
    if (v < std::numeric_limits<int32_t>::min() ||
        v > std::numeric_limits<int32_t>::max())
      return conversionError(a, "i32",
                             "element " + llvm::Twine(i) + " is " +
                                 llvm::Twine(v) + ", out of i32 range");
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

llvm::Expected<std::string> moe::npyHeader(StringRef descr,
                                           llvm::ArrayRef<int64_t> shape) {
  auto canon = canonicalDescr(descr, "npyHeader");
  if (!canon)
    return canon.takeError();
  if (auto bytes = dataBytes(*canon, shape, "npyHeader"); !bytes)
    return bytes.takeError();
  return buildHeader(*canon, shape);
}

llvm::Error moe::writeNpy(StringRef path, StringRef descr,
                          llvm::ArrayRef<int64_t> shape, const void *data,
                          size_t bytes) {
  auto canon = canonicalDescr(descr, path);
  if (!canon)
    return canon.takeError();
  auto expected = dataBytes(*canon, shape, path);
  if (!expected)
    return expected.takeError();
  if (static_cast<uint64_t>(*expected) != bytes)
    return fail(path, "data is " + llvm::Twine(bytes) + " bytes but shape " +
                          formatShape(shape) + " of '" + *canon + "' needs " +
                          llvm::Twine(*expected));

  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return fail(path, "cannot open for writing: " + ec.message());
  os << buildHeader(*canon, shape);
  if (bytes)
    os.write(static_cast<const char *>(data), bytes);
  os.close();
  if (os.has_error()) {
    const std::string msg = os.error().message();
    os.clear_error(); // Otherwise the stream aborts in its destructor.
    return fail(path, "write failed: " + msg);
  }
  return llvm::Error::success();
}
