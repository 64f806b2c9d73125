namespace Sdxl.Net.Tests.Imaging;

/// <summary>Small generation results with known pixels, for sink tests that need no model.</summary>
internal static class ImageSinkTestData
{
    public static GenerationResult Result(string prompt, int count = 1, long? seed = 42, int width = 16, int height = 8)
    {
        var images = new GeneratedImage[count];
        for (int i = 0; i < count; i++)
        {
            // A horizontal ramp per channel, different per image, so decoded files can be told apart.
            var pixels = new float[3 * width * height];
            for (int c = 0; c < 3; c++)
            {
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        pixels[(c * width * height) + (y * width) + x] = ((x + (c * 3) + (i * 5)) % width) / (float)(width - 1);
                    }
                }
            }

            images[i] = new GeneratedImage(i, width, height, pixels, seed is { } s ? s + i : null);
        }

        var request = new GenerationRequest { Prompt = prompt, Width = width, Height = height, Steps = 4, Seed = seed, BatchSize = count };
        return new GenerationResult(request, images, seed, "euler", [], TimeSpan.FromSeconds(1), "tiny");
    }
}
