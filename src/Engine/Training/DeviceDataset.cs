using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Engine.Training;

/// <summary>
/// A labelled dataset uploaded to the device once. Mini-batches are gathered on the device from an
/// index list, so clients and epochs are only index lists into this one copy.
/// </summary>
public sealed class DeviceDataset : IDisposable
{
    private readonly ComputeDevice device;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> features;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> labels;

    /// <summary>
    /// Uploads <paramref name="hostFeatures"/> ([count, sampleShape...] flattened) and
    /// <paramref name="hostLabels"/> (class indices, validated here).
    /// </summary>
    public DeviceDataset(ComputeDevice device, float[] hostFeatures, int[] hostLabels, int[] sampleShape, int classes)
    {
        this.device = device;
        SampleShape = (int[])sampleShape.Clone();
        SampleLength = (int)Tensor.ShapeLength(sampleShape);
        Count = hostLabels.Length;
        Classes = classes;
        if ((long)Count * SampleLength != hostFeatures.LongLength)
        {
            throw new ArgumentException($"dataset has {hostFeatures.LongLength} feature values for {Count} samples of {SampleLength}");
        }
        for (int i = 0; i < hostLabels.Length; i++)
        {
            if ((uint)hostLabels[i] >= (uint)classes)
            {
                throw new ArgumentException($"label {hostLabels[i]} of sample {i} is outside [0, {classes})");
            }
        }
        HostLabels = (int[])hostLabels.Clone();
        features = device.Accelerator.Allocate1D(hostFeatures);
        labels = device.Accelerator.Allocate1D(hostLabels);
    }

    /// <summary>Samples.</summary>
    public int Count { get; }

    /// <summary>Shape of one sample.</summary>
    public int[] SampleShape { get; }

    /// <summary>Floats per sample.</summary>
    public int SampleLength { get; }

    /// <summary>Classes.</summary>
    public int Classes { get; }

    /// <summary>The labels, also kept on the host for evaluation and label statistics.</summary>
    public IReadOnlyList<int> HostLabels { get; }

    /// <summary>Bytes on the device.</summary>
    public long Bytes => features.LengthInBytes + labels.LengthInBytes;

    /// <summary>
    /// Gathers the samples named by <paramref name="indices"/> into step temporaries of
    /// <paramref name="tape"/>: the input [batch, sampleShape...] and the labels [batch].
    /// </summary>
    public (Tensor Input, ArrayView<int> Labels) Batch(Tape tape, ReadOnlySpan<int> indices)
    {
        int batch = indices.Length;
        var deviceIndices = tape.Workspace.Ints.Allocate(batch);
        deviceIndices.CopyFromCPU(indices);
        var input = tape.NewTensor([batch, .. SampleShape], requiresGrad: false);
        var batchLabels = tape.Workspace.Ints.Allocate(batch);
        var k = device.Kernels.Gather;
        k.GatherRows(features.View, SampleLength, indices, deviceIndices, input.Data);
        k.GatherInts(labels.View, indices, deviceIndices, batchLabels);
        return (input, batchLabels);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        labels.Dispose();
        features.Dispose();
    }
}
