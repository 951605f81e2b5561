// Checked-in table of compressed sizes (synthetic data x codec -> bytes), as zstd keeps one:
// a change of the generator or of a codec's output size shows up as a diff of golden_sizes.tsv.
// Only ZVC and ZRLE-k are listed; the byte codecs' sizes belong to the library versions.
// Regenerate after an intended change: CDMA_UPDATE_GOLDEN=1 ctest -R Golden
#include <cdma/formats/codec.hpp>
#include <cdma/formats/synth.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace cdma::formats;

namespace {

std::string compute_table() {
  std::ostringstream os;
  os << "# clustering\tdtype\tdensity\tseed\tbytes\tzvc\tzrle-2\tzrle-4\tzrle-8\n";
  for (auto c : {Clustering::uniform, Clustering::channels, Clustering::spatial, Clustering::mixed})
    for (auto t : {DType::f32, DType::f16, DType::u8})
      for (double d : {0.05, 0.3, 0.7}) {
        SynthSpec s;
        s.dims = {2, 16, 14, 14};
        s.dtype = t;
        s.density = d;
        s.clustering = c;
        s.seed = 2018;
        const auto v = synth_activations(s);
        os << to_string(c) << '\t' << to_string(t) << '\t' << d << '\t' << s.seed << '\t' << v.size();
        for (const char* name : {"zvc", "zrle-2", "zrle-4", "zrle-8"})
          os << '\t' << make_codec(name)->compressed_size(v, dtype_size(t));
        os << '\n';
      }
  return os.str();
}

}  // namespace

TEST(GoldenSizes, MatchCheckedInTable) {
  const std::string path = std::string(CDMA_SOURCE_DIR) + "/tests/codecs/golden_sizes.tsv";
  const std::string now = compute_table();
  if (std::getenv("CDMA_UPDATE_GOLDEN")) {
    std::ofstream(path) << now;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(now, want.str());
}
