namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="AugmentKernels"/>: pad, crop, then flip, as torchvision does.</summary>
public static class AugmentReference
{
    /// <summary>
    /// Pads each image of <paramref name="source"/> [B, C, H, W] by <paramref name="padding"/> on
    /// every side with <paramref name="fill"/>[c], crops the H x W window whose top-left corner is
    /// (padding + dy, padding + dx), then mirrors it left-right when flip is 1.
    /// </summary>
    public static float[] RandomCropFlip(float[] source, int batch, int channels, int height, int width, int padding, int[] moves, float[] fill)
    {
        int paddedHeight = height + 2 * padding, paddedWidth = width + 2 * padding;
        var result = new float[source.Length];
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                var padded = new float[paddedHeight, paddedWidth];
                for (int y = 0; y < paddedHeight; y++)
                {
                    for (int x = 0; x < paddedWidth; x++)
                    {
                        int sy = y - padding, sx = x - padding;
                        padded[y, x] = sy >= 0 && sy < height && sx >= 0 && sx < width
                            ? source[((b * channels + c) * height + sy) * width + sx]
                            : fill[c];
                    }
                }
                int top = padding + moves[3 * b], left = padding + moves[3 * b + 1];
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        float cropped = padded[top + y, left + x];
                        int column = moves[3 * b + 2] == 1 ? width - 1 - x : x;
                        result[((b * channels + c) * height + y) * width + column] = cropped;
                    }
                }
            }
        }
        return result;
    }
}
