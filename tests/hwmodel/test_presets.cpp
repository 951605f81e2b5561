// The preset data files and their loader.
#include <cdma/hwmodel/presets.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace hw = cdma::hwmodel;
namespace fs = std::filesystem;

namespace {
fs::path presets() { return fs::path(CDMA_SOURCE_DIR) / "data" / "presets"; }

fs::path copy_presets(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("cdma_hw_presets_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  for (auto f : {"gpus.json", "links.json", "engines.json"}) fs::copy_file(presets() / f, d / f);
  return d;
}
void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
}  // namespace

TEST(HwPresets, ShippedFilesHoldTheDatasheetNumbers) {
  auto c = hw::PresetCatalog::load(presets());
  EXPECT_DOUBLE_EQ(c.gpu("titan-xp").dram_gbps, 547.7);
  EXPECT_DOUBLE_EQ(c.gpu("titan-x-maxwell").dram_gbps, 336.5);
  EXPECT_DOUBLE_EQ(c.gpu("h100").peak_flops("fp32"), 67e12);
  for (auto n : {"titan-x-maxwell", "titan-xp", "v100", "a100", "h100"}) {
    EXPECT_FALSE(c.gpu(n).sources.empty()) << n;
    EXPECT_GT(c.gpu(n).memory_gib, 0) << n;
  }
  EXPECT_NEAR(c.link("pcie3").nominal_gbps, 15.754, 1e-9);
  EXPECT_NEAR(c.link("pcie4").nominal_gbps, 2 * 15.754, 1e-9);
  EXPECT_NEAR(c.link("pcie5").nominal_gbps, 4 * 15.754, 1e-2);
  EXPECT_DOUBLE_EQ(c.link("pcie3").effective_bytes_per_s(), 15.754 * 0.8 * 1e9);
  EXPECT_FALSE(c.link("nvlink-c2c").sources.empty());
  EXPECT_EQ(c.engines.read_share_of_dram.count("dma"), 1u);
  EXPECT_EQ(hw::codec_family("zlib-6"), "zlib");
  EXPECT_EQ(hw::codec_family("zvc"), "zvc");
}

TEST(HwPresets, UnknownNamesListTheKnownOnes) {
  auto c = hw::PresetCatalog::load(presets());
  try {
    c.gpu("rtx-9090");
    FAIL();
  } catch (const hw::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("titan-xp"), std::string::npos);
  }
  EXPECT_THROW(c.link("pcie9"), hw::ModelError);
  EXPECT_THROW(c.gpu("titan-xp").peak_flops("fp8"), hw::ModelError);
}

TEST(HwPresets, BrokenFilesGiveErrorsNamingFileAndKey) {
  auto d = copy_presets("broken");
  write(d / "links.json",
        "{\"links\": [ {\"name\": \"x\", \"nominal_gbps\": -1, \"efficiency\": 1, \"latency_us\": 0} ]}");
  try {
    hw::PresetCatalog::load(d);
    FAIL();
  } catch (const hw::ModelError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("links.json"), std::string::npos) << w;
    EXPECT_NE(w.find("nominal_gbps"), std::string::npos) << w;
  }
  write(d / "links.json", "{ not json");
  EXPECT_THROW(hw::PresetCatalog::load(d), hw::ModelError);
  fs::remove(d / "links.json");
  EXPECT_THROW(hw::PresetCatalog::load(d), hw::ModelError);
  fs::remove_all(d);
  EXPECT_THROW(hw::PresetCatalog::load("/nonexistent/presets"), hw::ModelError);
}

TEST(HwPresets, DefaultDirectoryCanBeOverridden) {
  ::setenv("CDMA_PRESETS", "/some/where", 1);
  EXPECT_EQ(hw::default_preset_dir(), fs::path("/some/where"));
  ::unsetenv("CDMA_PRESETS");
  EXPECT_TRUE(fs::exists(hw::default_preset_dir() / "gpus.json"));
}
