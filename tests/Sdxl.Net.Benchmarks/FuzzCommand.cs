using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>fuzz</c>: a seeded mutation fuzzer over the readers of untrusted files — the image loader
/// (<see cref="ImageInput.Load(Stream, ImageLoadLimits?, string?)"/>), the .npy reader, the PNG recipe reader and the
/// safetensors reader of LoRA and embedding files —
/// for a fixed budget of executions per target. Each input must load or fail with the reader's documented exception
/// (<see cref="InvalidDataException"/> for images and safetensors, <see cref="FormatException"/> for .npy and recipes); anything else, or one execution slower than
/// <c>--slow-ms</c> (default 15 s: a hang), is a finding, saved with its reproducer under <c>--out</c>. The slowest
/// input is reported too. The same seed replays the same inputs.
/// </summary>
/// <example><c>dotnet run -c Release --project tests/Sdxl.Net.Benchmarks -- fuzz --seed 1 --executions 20000</c></example>
internal static class FuzzCommand
{
    private sealed record Target(string Name, byte[][] Corpus, Func<byte[], string, object?> Run, Type[] Expected);

    public static Task<int> RunAsync(CommandOptions options)
    {
        int seed = options.GetInt32("seed", 1);
        int executions = options.GetInt32("executions", 20000);
        int slowMs = options.GetInt32("slow-ms", 15000);
        var only = options.Get("target", "all");
        var outDir = options.Get("out", Path.Combine(Path.GetTempPath(), "sdxl-fuzz"));
        Directory.CreateDirectory(outDir);
        var scratch = Path.Combine(outDir, $"scratch-{Environment.ProcessId}.png");

        var targets = new List<Target>
        {
            new("image", ImageCorpus(), (bytes, _) => { using var image = ImageInput.Load(new MemoryStream(bytes), name: "fuzz"); return image.Width; }, [typeof(InvalidDataException)]),
            new("npy", NpyCorpus(), (bytes, _) => NpyFile.Read(new MemoryStream(bytes)).Shape, [typeof(FormatException)]),
            new("recipe", RecipeCorpus(), (bytes, path) => { File.WriteAllBytes(path, bytes); return ImageRecipe.ReadRecipe(path); }, [typeof(FormatException)]),
            new("safetensors", SafetensorsCorpus(), (bytes, path) =>
            {
                File.WriteAllBytes(path, bytes);
                var file = Sdxl.Net.Lora.SafetensorsFile.Open(path);
                float sum = 0;
                foreach (var tensor in file.Tensors.Values.Take(8))
                {
                    sum += file.ReadAsSingle(tensor).Sum();
                }

                return sum;
            }, [typeof(InvalidDataException)]),
        };

        Console.WriteLine($"fuzz: seed {seed}, {executions} executions per target, slow threshold {slowMs} ms, findings in {outDir}");
        int totalFindings = 0;
        foreach (var target in targets.Where(t => only == "all" || t.Name == only))
        {
            var random = new Random(HashCode.Combine(seed, target.Name.Length, target.Name[0]));
            var findings = new Dictionary<string, int>(StringComparer.Ordinal);
            int loaded = 0, rejected = 0;
            double slowest = 0;
            int slowestSize = 0;
            string slowestKind = "";
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < executions; i++)
            {
                var input = Mutate(random, target.Corpus);
                var one = Stopwatch.StartNew();
                string? finding = null;
                try
                {
                    target.Run(input, scratch);
                    loaded++;
                }
                catch (Exception e) when (Array.Exists(target.Expected, t => t.IsInstanceOfType(e)))
                {
                    rejected++;
                }
                catch (Exception e)
                {
                    finding = $"{e.GetType().Name} at {FirstFrame(e)}: {e.Message.Split('\n')[0]}";
                }

                double ms = one.Elapsed.TotalMilliseconds;
                if (ms > slowest)
                {
                    slowest = ms;
                    slowestSize = input.Length;
                    slowestKind = input.Length >= 4 ? Encoding.ASCII.GetString(input, 0, 4).Replace('\0', '.') : "?";
                }

                if (finding is null && ms > slowMs)
                {
                    finding = $"slower than {slowMs} ms";
                }

                if (finding is not null)
                {
                    if (!findings.TryGetValue(finding, out var count))
                    {
                        File.WriteAllBytes(Path.Combine(outDir, $"{target.Name}-{findings.Count}.bin"), input);
                        Console.WriteLine($"  finding {target.Name}-{findings.Count}: {finding}");
                    }

                    findings[finding] = count + 1;
                }
            }

            totalFindings += findings.Count;
            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{target.Name,-7} {executions} executions in {watch.Elapsed.TotalSeconds:0.0} s: {loaded} loaded, {rejected} rejected as documented, {findings.Count} distinct findings; slowest {slowest:0.0} ms ({slowestSize} bytes starting '{slowestKind}')"));
        }

        File.Delete(scratch);
        return Task.FromResult(totalFindings == 0 ? 0 : 1);
    }

    private static string FirstFrame(Exception e) =>
        new StackTrace(e, false).GetFrames().FirstOrDefault(f => f.GetMethod() is not null)?.GetMethod() is { } m ? $"{m.DeclaringType?.Name}.{m.Name}" : "?";

    /// <summary>One seeded mutation (or a few) of a corpus entry: bit flips, interesting values, inserts, deletes, splices, truncation.</summary>
    private static byte[] Mutate(Random random, byte[][] corpus)
    {
        var data = new List<byte>(corpus[random.Next(corpus.Length)]);
        int rounds = 1 + random.Next(4);
        for (int r = 0; r < rounds && data.Count > 0; r++)
        {
            int at = random.Next(data.Count);
            switch (random.Next(8))
            {
                case 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    data[at] = (byte)(random.Next(4) switch { 0 => 0, 1 => 0xFF, 2 => 0x7F, _ => 0x80 });
                    break;
                case 2:
                {
                    // A 32-bit length or dimension replaced by an interesting value, big- or little-endian.
                    var value = random.Next(6) switch { 0 => 0u, 1 => uint.MaxValue, 2 => 0x7FFFFFFFu, 3 => 0x80000000u, 4 => (uint)random.Next(1 << 16), _ => 1u };
                    Span<byte> word = stackalloc byte[4];
                    if (random.Next(2) == 0)
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(word, value);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(word, value);
                    }

                    for (int k = 0; k < 4 && at + k < data.Count; k++)
                    {
                        data[at + k] = word[k];
                    }

                    break;
                }

                case 3:
                    data.InsertRange(at, Enumerable.Range(0, 1 + random.Next(16)).Select(_ => (byte)random.Next(256)));
                    break;
                case 4:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(64)));
                    break;
                case 5:
                {
                    int length = Math.Min(data.Count - at, 1 + random.Next(128));
                    data.InsertRange(random.Next(data.Count), data.GetRange(at, length));
                    break;
                }

                case 6:
                    data.RemoveRange(at, data.Count - at);
                    break;
                default:
                {
                    var other = corpus[random.Next(corpus.Length)];
                    int from = random.Next(other.Length);
                    data.RemoveRange(at, data.Count - at);
                    data.AddRange(other.AsSpan(from).ToArray());
                    break;
                }
            }
        }

        var result = data.ToArray();
        if (random.Next(2) == 0)
        {
            FixPngCrcs(result);
        }

        return result;
    }

    /// <summary>Recomputes every PNG chunk CRC, so mutations reach the decoders past their checksum tests.</summary>
    private static void FixPngCrcs(byte[] png)
    {
        if (png.Length < 8 || png[0] != 0x89 || png[1] != (byte)'P')
        {
            return;
        }

        int at = 8;
        while (at + 12 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at));
            if (length > (uint)(png.Length - at - 12))
            {
                return;
            }

            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(at + 8 + (int)length), PngChunks.Crc32(png.AsSpan(at + 4, 4 + (int)length)));
            at += 12 + (int)length;
        }
    }

    private static byte[] Encode(Image image, SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        using var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }

    private static byte[][] ImageCorpus()
    {
        using var image = new Image<Rgb24>(24, 17);
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                image[x, y] = new Rgb24((byte)(x * 10), (byte)(y * 15), (byte)(x ^ y));
            }
        }

        using var oriented = image.Clone();
        oriented.Metadata.ExifProfile = new ExifProfile();
        oriented.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);
        return
        [
            Encode(image, new PngEncoder()),
            Encode(image, new PngEncoder { InterlaceMethod = PngInterlaceMode.Adam7, ColorType = PngColorType.Palette }),
            Encode(image, new PngEncoder { ColorType = PngColorType.RgbWithAlpha, BitDepth = PngBitDepth.Bit16 }),
            Encode(oriented, new PngEncoder()),
            Encode(image, new JpegEncoder { Quality = 80 }),
            Encode(oriented, new JpegEncoder { Quality = 80 }),
            Encode(image, new WebpEncoder()),
            Encode(image, new BmpEncoder()),
        ];
    }

    private static byte[][] NpyCorpus()
    {
        byte[] Npy(float[] data, int[] shape)
        {
            using var stream = new MemoryStream();
            NpyFile.Write(stream, data, shape);
            return stream.ToArray();
        }

        var header = Encoding.ASCII.GetBytes("\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 2, 2), }" + new string(' ', 44) + "\n");
        return
        [
            Npy(Enumerable.Range(0, 256).Select(i => i * 0.01f).ToArray(), [1, 4, 8, 8]),
            Npy([1f, 2f, 3f], [3]),
            [.. header, .. new byte[64]],
        ];
    }

    private static byte[][] SafetensorsCorpus()
    {
        static byte[] File(string header, byte[] data)
        {
            // 8-byte little-endian header length, the JSON header (space-padded to 8 bytes), then the data.
            var json = Encoding.UTF8.GetBytes(header);
            int padded = (json.Length + 7) / 8 * 8;
            var file = new byte[8 + padded + data.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
            file.AsSpan(8, padded).Fill((byte)' ');
            json.CopyTo(file, 8);
            data.CopyTo(file, 8 + padded);
            return file;
        }

        var f32 = new byte[16];
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(f32.AsSpan(i * 4), i + 0.5f);
        }

        return
        [
            File("""{"__metadata__":{"ss_network_alpha":"4"},"lora_unet_down.lora_down.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", f32),
            File("""{"a.alpha":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"F16","shape":[1,3],"data_offsets":[2,8]}}""", [0, 0x3C, 0, 0x40, 0, 0x42, 0, 0x44]),
            File("""{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}""", [0x80, 0x3F, 0, 0x40]),
        ];
    }

    private static byte[][] RecipeCorpus()
    {
        var pixels = new float[3 * 16 * 8];
        var request = new GenerationRequest { Prompt = "a lighthouse at dawn", NegativePrompt = "blur", Width = 16, Height = 8, Steps = 4, Seed = 42 };
        var result = new GenerationResult(request, [new GeneratedImage(0, 16, 8, pixels, 42)], 42, "euler", [], TimeSpan.FromSeconds(1), "tiny");
        var path = Path.Combine(Path.GetTempPath(), $"sdxl-fuzz-recipe-{Environment.ProcessId}.png");
        try
        {
            new PngFileSink(path).WriteAsync(result).AsTask().GetAwaiter().GetResult();
            return [File.ReadAllBytes(path)];
        }
        finally
        {
            File.Delete(path);
        }
    }
}
