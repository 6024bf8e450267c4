using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Builds a mini-batch from a dataset that lives on the device: copies the rows named by an index
/// list. Datasets are uploaded once; clients and batches are index lists into them. Also the
/// strided subsample of NCHW planes that a 1x1 strided convolution reads (kept for its backward).
/// CPU reference: <see cref="Reference.GatherReference"/>.
/// </summary>
public sealed class GatherKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int> rows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int> labels;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int> scatter;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, ThreadRanges> subsample;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public GatherKernels(KernelLaunch launch)
    {
        this.launch = launch;
        rows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(GatherRowsKernel);
        labels = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>(GatherIntsKernel);
        scatter = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(ScatterKernel);
        subsample = launch.Load<ArrayView<float>, ArrayView<float>, int, int, int, int, int, ThreadRanges>(SubsampleKernel);
    }

    /// <summary>Rows (or columns) of a plane of <paramref name="size"/> that a stride keeps: 0, s, 2s, ...</summary>
    public static int SubsampledSize(int size, int stride) => (size - 1) / stride + 1;

    /// <summary>
    /// destination[p, i, j] = source[p, i * stride, j * stride] for <paramref name="planes"/> planes
    /// of [height, width] (an NCHW tensor has batch * channels planes): exactly the elements a 1x1
    /// convolution with this stride and no padding reads. destination is [planes,
    /// <see cref="SubsampledSize"/>(height), <see cref="SubsampledSize"/>(width)].
    /// </summary>
    public void Subsample(ArrayView<float> source, int planes, int height, int width, int stride, ArrayView<float> destination)
    {
        HostCheck.Positive(planes, "subsample planes");
        HostCheck.Positive(height, "subsample height");
        HostCheck.Positive(width, "subsample width");
        HostCheck.Positive(stride, "subsample stride");
        HostCheck.Length(source, (long)planes * height * width, "subsample source");
        int outHeight = SubsampledSize(height, stride), outWidth = SubsampledSize(width, stride);
        int n = HostCheck.Count((long)planes * outHeight * outWidth, "subsample");
        HostCheck.Length(destination, n, "subsample destination");
        int t = launch.Threads(n);
        subsample(t, source, destination, height, width, stride, outHeight, outWidth, ThreadRanges.For(n, t, launch.IsCpu));
    }

    /// <summary>
    /// destination[i, :] = source[indices[i], :] for rows of <paramref name="rowLength"/> floats.
    /// <paramref name="hostIndices"/> is the same index list on the host, validated here against the
    /// source's row count before the launch (a bad index must never reach the kernel).
    /// </summary>
    public void GatherRows(ArrayView<float> source, int rowLength, ReadOnlySpan<int> hostIndices, ArrayView<int> indices, ArrayView<float> destination)
    {
        HostCheck.Positive(rowLength, "gather row length");
        long sourceRows = source.Length / rowLength;
        ValidateIndices(hostIndices, indices, sourceRows, "gather rows");
        HostCheck.Length(destination, (long)hostIndices.Length * rowLength, "gather rows destination");
        int n = HostCheck.Count((long)hostIndices.Length * rowLength, "gather rows");
        int t = launch.Threads(n);
        rows(t, source, indices, destination, rowLength, n, t);
    }

    /// <summary>destination[i] = source[indices[i]], indices validated on the host as for <see cref="GatherRows"/>.</summary>
    public void GatherInts(ArrayView<int> source, ReadOnlySpan<int> hostIndices, ArrayView<int> indices, ArrayView<int> destination)
    {
        ValidateIndices(hostIndices, indices, source.Length, "gather ints");
        HostCheck.Length(destination, hostIndices.Length, "gather ints destination");
        int n = hostIndices.Length;
        int t = launch.Threads(n);
        labels(t, source, indices, destination, n, t);
    }

    /// <summary>
    /// Densifies a compressed list: destination = 0, then destination[indices[i]] = values[i] for
    /// i &lt; count. The indices live on the device (written by a top-K compress), so the kernel
    /// skips any index outside the destination instead of trusting it.
    /// </summary>
    public void Scatter(ArrayView<float> values, ArrayView<int> indices, int count, ArrayView<float> destination)
    {
        HostCheck.Length(values, count, "scatter values");
        HostCheck.Length(indices, count, "scatter indices");
        int n = HostCheck.Count(destination.Length, "scatter destination");
        launch.Zero(destination);
        int t = launch.Threads(count);
        scatter(t, values, indices, destination, count, n, t);
    }

    private static void ValidateIndices(ReadOnlySpan<int> hostIndices, ArrayView<int> indices, long rowsAvailable, string what)
    {
        if (indices.Length != hostIndices.Length)
        {
            throw new ArgumentException($"{what}: device index list has {indices.Length} entries, host list {hostIndices.Length}");
        }
        foreach (int index in hostIndices)
        {
            if ((uint)index >= rowsAvailable)
            {
                throw new ArgumentOutOfRangeException(nameof(hostIndices), index, $"{what}: index outside [0, {rowsAvailable})");
            }
        }
    }

    [GpuKernel]
    internal static void GatherRowsKernel(Index1D index, ArrayView<float> source, ArrayView<int> indices, ArrayView<float> destination, int rowLength, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            int row = i / rowLength;
            int column = i - row * rowLength;
            destination[i] = source[(long)indices[row] * rowLength + column];
        }
    }

    [GpuKernel]
    internal static void ScatterKernel(Index1D index, ArrayView<float> values, ArrayView<int> indices, ArrayView<float> destination, int count, int n, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            int target = indices[i];
            if ((uint)target < (uint)n)
            {
                destination[target] = values[i];
            }
        }
    }

    [GpuKernel]
    internal static void SubsampleKernel(Index1D index, ArrayView<float> source, ArrayView<float> destination,
        int height, int width, int stride, int outHeight, int outWidth, ThreadRanges r) =>
        GatherRanges.Subsample(source, destination, height, width, stride, outHeight, outWidth, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void GatherIntsKernel(Index1D index, ArrayView<int> source, ArrayView<int> indices, ArrayView<int> destination, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            destination[i] = source[indices[i]];
        }
    }
}
