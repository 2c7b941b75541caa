//===- NpyTest.cpp - NumPy .npy reading and writing -----------------------===//
//
// Hand-made .npy byte strings (v1.0, v2.0, v3.0 headers), the exact bytes
// numpy.save writes, round trips through files, and one test per way a file
// can be malformed: each must be an llvm::Error naming the file, never a
// crash or a huge allocation.
//
//===----------------------------------------------------------------------===//
#include "runtime/Npy.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace moe;

namespace {

/// A .npy file's bytes: magic, version, little-endian header length, header.
std::string npyBytes(const std::string &header, const std::string &data,
                     int major = 1) {
  std::string s("\x93NUMPY", 6);
  s += static_cast<char>(major);
  s += '\0';
  const size_t lenBytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < lenBytes; ++i)
    s += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return s + header + data;
}

std::string dict(const std::string &descr, const std::string &shape,
                 const std::string &order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + order +
         ", 'shape': " + shape + ", }\n";
}

template <typename T> std::string bytesOf(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(s.data(), values.begin(), s.size());
  return s;
}

/// The error message of a failed parse, or "" if it succeeded.
std::string parseError(const std::string &bytes) {
  auto a = parseNpy(bytes, "x.npy");
  if (a)
    return "";
  return llvm::toString(a.takeError());
}

#define EXPECT_PARSE_ERROR(bytes, text)                                        \
  do {                                                                         \
    const std::string msg = parseError(bytes);                                 \
    EXPECT_EQ(msg.rfind("x.npy: ", 0), 0u) << msg;                             \
    EXPECT_NE(msg.find(text), std::string::npos) << msg;                       \
  } while (0)

/// A temporary file path, removed when the test ends.
class TempPath {
public:
  TempPath() {
    llvm::sys::fs::createTemporaryFile("moe-npy-test", "npy", path);
  }
  ~TempPath() { llvm::sys::fs::remove(path); }
  llvm::StringRef str() const { return path; }

private:
  llvm::SmallString<128> path;
};

/// An Error's message, or "" for success.
std::string errorText(llvm::Error e) {
  return e ? llvm::toString(std::move(e)) : "";
}

std::string readFile(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  return buf ? (*buf)->getBuffer().str() : "";
}

//===----------------------------------------------------------------------===//
// Parsing well-formed files
//===----------------------------------------------------------------------===//

/// Check a minimal v1.0 file (no alignment padding, which readers accept).
TEST(NpyTest, ParseV1) {
  auto a = parseNpy(npyBytes(dict("<i4", "(2,)"), bytesOf<int32_t>({7, -3})),
                    "x.npy");
  ASSERT_TRUE(!!a) << llvm::toString(a.takeError());
  EXPECT_EQ(a->descr, "<i4");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(a->numElements(), 2);
  auto v = npyToI32(*a);
  ASSERT_TRUE(!!v);
  EXPECT_EQ(*v, (std::vector<int32_t>{7, -3}));
}

/// Check v2.0 and v3.0, whose header length is a 4-byte field.
TEST(NpyTest, ParseV2AndV3) {
  for (int major : {2, 3}) {
    auto a = parseNpy(npyBytes(dict("<f4", "(1, 2)"),
                               bytesOf<float>({1.5f, -2.0f}), major),
                      "x.npy");
    ASSERT_TRUE(!!a) << llvm::toString(a.takeError());
    EXPECT_EQ(a->shape, (std::vector<int64_t>{1, 2}));
    auto v = npyToF32(*a);
    ASSERT_TRUE(!!v);
    EXPECT_EQ(*v, (std::vector<float>{1.5f, -2.0f}));
  }
}

/// Check the spellings a Python dict literal allows: key order, double
/// quotes, spacing, trailing commas, rank 0, Python 2 longs, '<u1'.
TEST(NpyTest, ParseHeaderVariants) {
  auto a = parseNpy(npyBytes("{ \"shape\" : ( 2 , 1 , ) ,\"fortran_order\":"
                             "False,'descr':\"<u1\"}   \n",
                             "\x01\x02"),
                    "x.npy");
  ASSERT_TRUE(!!a) << llvm::toString(a.takeError());
  EXPECT_EQ(a->descr, "|u1"); // canonical spelling
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 1}));

  auto scalar = parseNpy(npyBytes(dict("<f8", "()"), bytesOf<double>({0.25})),
                         "x.npy");
  ASSERT_TRUE(!!scalar);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numElements(), 1);

  auto py2 = parseNpy(
      npyBytes(dict("|b1", "(3L,)"), std::string("\x01\x00\x01", 3)), "x.npy");
  ASSERT_TRUE(!!py2);
  EXPECT_EQ(py2->shape, (std::vector<int64_t>{3}));

  auto empty = parseNpy(npyBytes(dict("<f4", "(0, 5)"), ""), "x.npy");
  ASSERT_TRUE(!!empty);
  EXPECT_EQ(empty->numElements(), 0);
}

//===----------------------------------------------------------------------===//
// Malformed files
//===----------------------------------------------------------------------===//

/// Check the preamble errors: magic, version, truncated header.
TEST(NpyTest, RejectsBadPreamble) {
  const std::string good = npyBytes(dict("<f4", "(1,)"), bytesOf<float>({1}));
  EXPECT_PARSE_ERROR("", "bad magic");
  EXPECT_PARSE_ERROR(std::string("\x93NUMPZ\x01\x00\x10\x00", 10), "bad magic");
  EXPECT_PARSE_ERROR(good.substr(0, 7), "truncated preamble");
  EXPECT_PARSE_ERROR(good.substr(0, 9), "truncated preamble");
  std::string v4 = good;
  v4[6] = 4;
  EXPECT_PARSE_ERROR(v4, "unsupported .npy version 4.0");
  EXPECT_PARSE_ERROR(good.substr(0, 30), "truncated header");
  EXPECT_PARSE_ERROR(npyBytes(dict("<f4", "(1,)"), "", 2).substr(0, 11),
                     "truncated preamble");
}

/// Check that every malformed dict is reported, not misread.
TEST(NpyTest, RejectsMalformedHeader) {
  const std::string four = bytesOf<float>({1});
  auto bad = [&](const std::string &header) { return npyBytes(header, four); };
  EXPECT_PARSE_ERROR(bad("'descr': '<f4'"), "malformed header: expected '{'");
  EXPECT_PARSE_ERROR(bad("{'descr': '<f4', 'shape': (1,), }"),
                     "needs the keys");
  EXPECT_PARSE_ERROR(bad("{'descr': '<f4', 'descr': '<f4', }"), "repeated");
  EXPECT_PARSE_ERROR(bad("{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (1,), 'extra': 1}"),
                     "unexpected or repeated key 'extra'");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(1)")), "must be a tuple");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(-1,)")), "non-negative integer");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(1 2)")), "expected ','");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(99999999999999999999,)")),
                     "dim too large");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(1,)", "Maybe")), "True or False");
  EXPECT_PARSE_ERROR(bad("{'descr': '<f4"), "unterminated string");
  EXPECT_PARSE_ERROR(bad(dict("<f4", "(1,)") + "x"), "trailing characters");
  EXPECT_PARSE_ERROR(bad("{'descr': [('a', '<f4')], 'fortran_order': False, "
                         "'shape': (1,), }"),
                     "structured dtypes");
  EXPECT_PARSE_ERROR(bad(std::string("{'descr': '<f4'\0", 16)), "expected");
}

/// Check the supported-type rules: little-endian only, known kinds only,
/// C order only.
TEST(NpyTest, RejectsUnsupportedArrays) {
  const std::string four = bytesOf<float>({1});
  EXPECT_PARSE_ERROR(npyBytes(dict("<f4", "(1,)", "True"), four),
                     "fortran_order arrays are not supported");
  EXPECT_PARSE_ERROR(npyBytes(dict(">f4", "(1,)"), four), "big-endian");
  EXPECT_PARSE_ERROR(npyBytes(dict("<c8", "(1,)"), four),
                     "unsupported descr '<c8'");
  EXPECT_PARSE_ERROR(npyBytes(dict("<U1", "(1,)"), four), "unsupported descr");
  EXPECT_PARSE_ERROR(npyBytes(dict("|f4", "(1,)"), four), "unsupported descr");
  EXPECT_PARSE_ERROR(npyBytes(dict("float32", "(1,)"), four),
                     "unsupported descr");
}

/// Check data-size errors, including shapes whose size would be absurd to
/// allocate: the check against the file comes first.
TEST(NpyTest, RejectsWrongDataSize) {
  EXPECT_PARSE_ERROR(npyBytes(dict("<f4", "(32, 32)"), std::string(100, 'x')),
                     "truncated data: expected 4096 bytes, found 100");
  EXPECT_PARSE_ERROR(npyBytes(dict("<i4", "(2,)"), std::string(12, 'x')),
                     "shape/data size mismatch");
  EXPECT_PARSE_ERROR(npyBytes(dict("<f8", "(4000000000000,)"), "12345678"),
                     "truncated data: expected 32000000000000 bytes");
  EXPECT_PARSE_ERROR(
      npyBytes(dict("<f4", "(4000000000, 4000000000, 4000000000)"), ""),
      "too large");
  EXPECT_PARSE_ERROR(npyBytes(dict("<i8", "(9223372036854775807,)"), ""),
                     "too large");
}

/// Check that a missing file is an error naming it.
TEST(NpyTest, ReadMissingFile) {
  auto a = readNpy("/nonexistent/dir/y.npy");
  ASSERT_FALSE(!!a);
  const std::string msg = llvm::toString(a.takeError());
  EXPECT_EQ(msg.rfind("/nonexistent/dir/y.npy: cannot open", 0), 0u) << msg;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// Check the exact header numpy 1.24's np.save writes for a (3, 4) float32
/// array: a 59-character dict, 20 spare spaces for the first dim to grow
/// into (21 digits minus the 1 of "3"), 38 spaces of padding to 64 bytes
/// (10 + 59 + 20 + 38 + 1 = 128) and a '\n'.
TEST(NpyTest, HeaderMatchesNumpy) {
  auto h = npyHeader("<f4", {3, 4});
  ASSERT_TRUE(!!h);
  const std::string dictText =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  EXPECT_EQ(*h, std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dictText +
                    std::string(58, ' ') + "\n");
  EXPECT_EQ(h->size(), 128u);

  auto scalar = npyHeader("<i4", {});
  ASSERT_TRUE(!!scalar);
  EXPECT_NE(scalar->find("'shape': (), }"), std::string::npos);
  auto vec = npyHeader("<u1", {3});
  ASSERT_TRUE(!!vec);
  EXPECT_NE(vec->find("'descr': '|u1'"), std::string::npos);
  EXPECT_NE(vec->find("'shape': (3,), }"), std::string::npos);
  EXPECT_EQ(vec->size() % 64, 0u);
  auto bigEndian = npyHeader(">f4", {1});
  EXPECT_FALSE(!!bigEndian);
  llvm::consumeError(bigEndian.takeError());
}

/// Check that every type survives writeNpy then readNpy bit for bit.
TEST(NpyTest, WriteThenRead) {
  struct Case {
    const char *descr;
    std::vector<int64_t> shape;
    std::string data;
  } cases[] = {
      {"<f4", {2, 3}, bytesOf<float>({1, -2, 3.5f, 0, 1e-30f, 7})},
      {"<f2", {2}, bytesOf<uint16_t>({0x3C00, 0xC000})},
      {"<f8", {}, bytesOf<double>({3.25})},
      {"<i4", {4}, bytesOf<int32_t>({0, -1, INT32_MAX, INT32_MIN})},
      {"<i8", {1, 1, 2}, bytesOf<int64_t>({-5, 6})},
      {"|u1", {3}, std::string("\x00\xff\x10", 3)},
      {"|i1", {2}, "\x80\x7f"},
      {"|b1", {0, 4}, ""},
  };
  for (const Case &c : cases) {
    TempPath path;
    ASSERT_EQ(errorText(writeNpy(path.str(), c.descr, c.shape,
                                 c.data.data(), c.data.size())),
              "");
    EXPECT_EQ(readFile(path.str()).size() % 64, c.data.size() % 64);
    auto a = readNpy(path.str());
    ASSERT_TRUE(!!a) << llvm::toString(a.takeError());
    EXPECT_EQ(a->descr, c.descr);
    EXPECT_EQ(a->shape, c.shape);
    EXPECT_EQ(std::string(a->data.begin(), a->data.end()), c.data);
  }
}

/// Check that a header over 64 KiB switches to version 2.0, as numpy does.
TEST(NpyTest, WriteLargeHeaderUsesV2) {
  const std::vector<int64_t> shape(25000, 1); // "1, " x 25000 > 65535
  TempPath path;
  const float one = 1.0f;
  ASSERT_EQ(errorText(writeNpy(path.str(), "<f4", shape, &one, 4)), "");
  const std::string bytes = readFile(path.str());
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes[6], 2);
  EXPECT_EQ((bytes.size() - 4) % 64, 0u);
  auto a = readNpy(path.str());
  ASSERT_TRUE(!!a) << llvm::toString(a.takeError());
  EXPECT_EQ(a->shape.size(), shape.size());
}

/// Check writeNpy's argument errors.
TEST(NpyTest, WriteRejectsBadArguments) {
  TempPath path;
  const float data[2] = {1, 2};
  EXPECT_NE(errorText(writeNpy(path.str(), "<f4", {3}, data, 8)).find(
                "data is 8 bytes but shape (3,) of '<f4' needs 12"),
            std::string::npos);
  EXPECT_NE(errorText(writeNpy(path.str(), "<c8", {1}, data, 8))
                .find("unsupported descr"),
            std::string::npos);
  EXPECT_NE(errorText(writeNpy(path.str(), "<f4", {-1}, data, 0))
                .find("invalid or too large shape (-1,)"),
            std::string::npos);
  EXPECT_NE(errorText(writeNpy("/nonexistent/dir/z.npy", "<f4", {2}, data, 8))
                .find("cannot open for writing"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Conversions
//===----------------------------------------------------------------------===//

NpyArray array(const char *descr, std::vector<int64_t> shape,
               const std::string &data) {
  return NpyArray{descr, std::move(shape), {data.begin(), data.end()}};
}

/// Check float conversions from f2, f4 and f8, and that integers are refused.
TEST(NpyTest, ToF32) {
  auto h = npyToF32(array("<f2", {2}, bytesOf<uint16_t>({0x3C00, 0x7C00})));
  ASSERT_TRUE(!!h);
  EXPECT_EQ((*h)[0], 1.0f);
  EXPECT_TRUE(std::isinf((*h)[1]));
  auto d = npyToF32(array("<f8", {2}, bytesOf<double>({0.1, 1e300})));
  ASSERT_TRUE(!!d);
  EXPECT_EQ((*d)[0], 0.1f);
  EXPECT_TRUE(std::isinf((*d)[1]));
  auto i = npyToF32(array("<i4", {1}, bytesOf<int32_t>({1})));
  ASSERT_FALSE(!!i);
  EXPECT_NE(llvm::toString(i.takeError()).find("not a floating-point type"),
            std::string::npos);
}

/// Check integer conversions, overflow errors and integral floats.
TEST(NpyTest, ToI32) {
  auto small = npyToI32(array("|i1", {2}, "\xff\x05"));
  ASSERT_TRUE(!!small);
  EXPECT_EQ(*small, (std::vector<int32_t>{-1, 5}));
  auto u = npyToI32(array("|u1", {1}, "\xff"));
  ASSERT_TRUE(!!u);
  EXPECT_EQ(*u, (std::vector<int32_t>{255}));
  auto b = npyToI32(array("|b1", {2}, std::string("\x00\x01", 2)));
  ASSERT_TRUE(!!b);
  EXPECT_EQ(*b, (std::vector<int32_t>{0, 1}));
  auto wide = npyToI32(array("<i8", {2}, bytesOf<int64_t>({-7, 1LL << 31})));
  ASSERT_FALSE(!!wide);
  EXPECT_NE(llvm::toString(wide.takeError())
                .find("element 1 is 2147483648, out of i32 range"),
            std::string::npos);
  auto f = npyToI32(array("<f4", {3}, bytesOf<float>({3, -0.0f, -2e9f})));
  ASSERT_TRUE(!!f);
  EXPECT_EQ(*f, (std::vector<int32_t>{3, 0, -2000000000}));
  auto frac = npyToI32(array("<f4", {2}, bytesOf<float>({1, 2.5f})));
  ASSERT_FALSE(!!frac);
  EXPECT_NE(llvm::toString(frac.takeError()).find("element 1 is 2.5"),
            std::string::npos);
  auto big = npyToI32(array("<f8", {1}, bytesOf<double>({3e9})));
  EXPECT_FALSE(!!big);
  llvm::consumeError(big.takeError());
}

/// Check that a hand-built array whose shape and data disagree is an error.
TEST(NpyTest, ConversionsCheckConsistency) {
  auto a = npyToF32(array("<f4", {4}, bytesOf<float>({1})));
  ASSERT_FALSE(!!a);
  EXPECT_NE(llvm::toString(a.takeError()).find("disagree"), std::string::npos);
  auto b = npyToI32(array("<i4", {-1}, ""));
  EXPECT_FALSE(!!b);
  llvm::consumeError(b.takeError());
}

} // namespace
