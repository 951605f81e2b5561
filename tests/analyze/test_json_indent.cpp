// write_json's indentation: the bytes of nlohmann's dump(indent) for every indent it takes (written
// by its own printer: nlohmann 3.11.2 copied heap bytes past its buffer of spaces for an indent
// above 512), and an indent out of range refused (issue 29, Medium 10).
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/error.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

namespace cdma::analyze {
namespace {

std::string json_of(const Analysis& a, int indent) {
  std::ostringstream os;
  write_json(os, a, indent);
  return os.str();
}

TEST(AnalyzeJsonIndent, SameBytesAsNlohmannForEveryIndentAndRefusesOthers) {
  Options o;
  o.codecs = {"zvc", "lz4"};
  const Analysis a = run_analysis({std::filesystem::path(CDMA_SOURCE_DIR) / "data/vgg-fmnist.h5"}, o);
  const auto doc = nlohmann::ordered_json::parse(json_of(a, -1));
  for (int indent : {0, 1, 2, 4, 17, kMaxJsonIndent}) {
    const std::string text = json_of(a, indent);
    EXPECT_EQ(text, doc.dump(indent) + "\n") << "indent " << indent;
    for (char c : text) ASSERT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << "indent " << indent;
  }
  EXPECT_EQ(json_of(a, -1), doc.dump() + "\n");
  for (int bad : {-2, kMaxJsonIndent + 1, 1025, 100000}) EXPECT_THROW(json_of(a, bad), formats::UsageError) << bad;
}

}  // namespace
}  // namespace cdma::analyze
