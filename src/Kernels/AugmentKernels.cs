using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Training-time image augmentation on the device, applied to a gathered mini-batch: random crop
/// with zero padding followed by a random horizontal flip (torchvision's
/// <c>RandomCrop(size, padding)</c> + <c>RandomHorizontalFlip()</c>, with the padding filled by
/// the normalised value of a black pixel). The random draws are made on the host (seeded) and
/// passed as one (dy, dx, flip) triple per sample. CPU reference: <see cref="Reference.AugmentReference"/>.
/// </summary>
public sealed class AugmentKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ImageShape, int, int> cropFlip;

    /// <summary>Loads the kernel once for the accelerator of <paramref name="launch"/>.</summary>
    public AugmentKernels(KernelLaunch launch)
    {
        this.launch = launch;
        cropFlip = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ImageShape, int, int>(CropFlipKernel);
    }

    /// <summary>
    /// destination [B, C, H, W] = source [B, C, H, W] of sample b shifted by (dy, dx) = moves[3b],
    /// moves[3b + 1] and mirrored left-right when moves[3b + 2] is 1:
    /// <c>destination[b, c, y, x] = source[b, c, y + dy, x' + dx]</c> with x' = W - 1 - x when flipped,
    /// else x, and <c>fill[c]</c> where that lies outside the image. <paramref name="hostMoves"/>
    /// is the same list on the host, checked here (|dy|, |dx| at most <paramref name="padding"/>,
    /// flip 0 or 1) before the launch. destination must not be source.
    /// </summary>
    public void RandomCropFlip(ArrayView<float> source, ArrayView<float> destination, int batch, int channels, int height, int width,
        int padding, ReadOnlySpan<int> hostMoves, ArrayView<int> moves, ArrayView<float> fill)
    {
        HostCheck.Positive(batch, "crop-flip batch");
        HostCheck.Positive(channels, "crop-flip channels");
        HostCheck.Positive(height, "crop-flip height");
        HostCheck.Positive(width, "crop-flip width");
        int n = HostCheck.Count((long)batch * channels * height * width, "crop-flip");
        HostCheck.Length(source, n, "crop-flip source");
        HostCheck.Length(destination, n, "crop-flip destination");
        HostCheck.Length(fill, channels, "crop-flip fill");
        if (hostMoves.Length != 3 * batch || moves.Length != 3 * batch)
        {
            throw new ArgumentException($"crop-flip: {hostMoves.Length} host and {moves.Length} device move entries for {batch} samples (3 each)");
        }
        for (int b = 0; b < batch; b++)
        {
            int dy = hostMoves[3 * b], dx = hostMoves[3 * b + 1], flip = hostMoves[3 * b + 2];
            if (Math.Abs(dy) > padding || Math.Abs(dx) > padding || (flip != 0 && flip != 1))
            {
                throw new ArgumentException($"crop-flip: sample {b} has move ({dy}, {dx}, flip {flip}); shifts must be within {padding} and flip 0 or 1");
            }
        }
        int t = launch.Threads(n);
        cropFlip(t, source, moves, fill, destination, new ImageShape(channels, height, width), n, t);
    }

    /// <summary>Channels, height and width of one image.</summary>
    internal readonly record struct ImageShape(int Channels, int Height, int Width);

    [GpuKernel]
    internal static void CropFlipKernel(Index1D index, ArrayView<float> source, ArrayView<int> moves, ArrayView<float> fill,
        ArrayView<float> destination, ImageShape shape, int n, int stride)
    {
        int plane = shape.Height * shape.Width;
        int sample = shape.Channels * plane;
        for (int i = index; i < n; i += stride)
        {
            int b = i / sample;
            int rest = i - b * sample;
            int c = rest / plane;
            int p = rest - c * plane;
            int y = p / shape.Width;
            int x = p - y * shape.Width;
            int sy = y + moves[3 * b];
            int sx = (moves[3 * b + 2] != 0 ? shape.Width - 1 - x : x) + moves[3 * b + 1];
            destination[i] = (uint)sy < (uint)shape.Height && (uint)sx < (uint)shape.Width
                ? source[(long)b * sample + c * plane + sy * shape.Width + sx]
                : fill[c];
        }
    }
}
