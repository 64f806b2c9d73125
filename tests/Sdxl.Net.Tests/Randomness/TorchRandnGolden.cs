using System.Text.Json;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>Reads TestData/golden/torch_randn.json (torch 1.13 CPU generator draws for a few seeds).</summary>
internal static class TorchRandnGolden
{
    /// <summary>The records produced by torch's AVX2 kernels.</summary>
    public const string Avx2Records = "seeds";

    /// <summary>The records produced with ATEN_CPU_CAPABILITY=default (portable kernels).</summary>
    public const string ScalarRecords = "seeds_scalar_path";

    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Golden, "torch_randn.json"))));

    /// <summary>Every (record set, seed index) pair in the file, for theories.</summary>
    public static TheoryData<string, int> AllRecords()
    {
        var data = new TheoryData<string, int>();
        foreach (var set in new[] { Avx2Records, ScalarRecords })
        {
            for (var i = 0; i < Document.Value.RootElement.GetProperty(set).GetArrayLength(); i++)
            {
                data.Add(set, i);
            }
        }

        return data;
    }

    /// <summary>The AVX2 record indices, for theories about kernel-independent draws.</summary>
    public static TheoryData<int> Avx2RecordIndices()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < Document.Value.RootElement.GetProperty(Avx2Records).GetArrayLength(); i++)
        {
            data.Add(i);
        }

        return data;
    }

    public static JsonElement Record(string set, int index) => Document.Value.RootElement.GetProperty(set)[index];

    public static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    public static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();

    public static long[] Int64s(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();

    public static uint[] UInt32s(JsonElement array) => array.EnumerateArray().Select(e => e.GetUInt32()).ToArray();
}
