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
    private MemoryBuffer1D<float, Stride1D.Dense>? cropFill;
    private int cropPadding;
    private int[] moves = [];

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

    /// <summary>True when training batches are randomly cropped and flipped (see <see cref="EnableCropFlip"/>).</summary>
    public bool Augments => cropFill is not null;

    /// <summary>
    /// From now on every training batch ([batch, C, H, W] images) is randomly cropped from the image
    /// padded by <paramref name="padding"/> pixels (filled with <paramref name="fill"/>[c]) and
    /// randomly flipped left-right, on the device; evaluation batches are not.
    /// </summary>
    public void EnableCropFlip(int padding, float[] fill)
    {
        if (SampleShape.Length != 3 || fill.Length != SampleShape[0] || padding < 0 || padding >= Math.Min(SampleShape[1], SampleShape[2]))
        {
            throw new ArgumentException($"crop-flip augmentation needs [C, H, W] samples, one fill value per channel and a padding below the image size; got samples {string.Join('x', SampleShape)}, {fill.Length} fill values, padding {padding}");
        }
        cropFill?.Dispose();
        cropFill = device.Accelerator.Allocate1D(fill);
        cropPadding = padding;
    }

    /// <summary>
    /// Gathers the samples named by <paramref name="indices"/> into step temporaries of
    /// <paramref name="tape"/>: the input [batch, sampleShape...] and the labels [batch]. While the
    /// tape is training and augmentation is on, the images are cropped and flipped with moves drawn
    /// from <paramref name="augmentationSeed"/>.
    /// </summary>
    public (Tensor Input, ArrayView<int> Labels) Batch(Tape tape, ReadOnlySpan<int> indices, int augmentationSeed = 0)
    {
        int batch = indices.Length;
        var deviceIndices = tape.Workspace.Ints.Allocate(batch);
        device.Kernels.Launch.Upload(indices, deviceIndices);
        var input = tape.NewTensor([batch, .. SampleShape], requiresGrad: false);
        var batchLabels = tape.Workspace.Ints.Allocate(batch);
        var k = device.Kernels.Gather;
        if (cropFill is not null && tape.Training)
        {
            var gathered = tape.Workspace.Floats.Allocate(input.Length);
            k.GatherRows(features.View, SampleLength, indices, deviceIndices, gathered);
            var random = new Random(augmentationSeed);
            if (moves.Length < 3 * batch)
            {
                moves = new int[3 * batch];
            }
            var batchMoves = moves.AsSpan(0, 3 * batch);
            for (int i = 0; i < batchMoves.Length; i += 3)
            {
                batchMoves[i] = random.Next(-cropPadding, cropPadding + 1);
                batchMoves[i + 1] = random.Next(-cropPadding, cropPadding + 1);
                batchMoves[i + 2] = random.Next(2);
            }
            var deviceMoves = tape.Workspace.Ints.Allocate(batchMoves.Length);
            device.Kernels.Launch.Upload((ReadOnlySpan<int>)batchMoves, deviceMoves);
            device.Kernels.Augment.RandomCropFlip(gathered, input.Data, batch, SampleShape[0], SampleShape[1], SampleShape[2],
                cropPadding, batchMoves, deviceMoves, cropFill.View);
            tape.Discard(gathered);
            tape.Discard(deviceMoves);
        }
        else
        {
            k.GatherRows(features.View, SampleLength, indices, deviceIndices, input.Data);
        }
        k.GatherInts(labels.View, indices, deviceIndices, batchLabels);
        tape.Discard(deviceIndices);
        return (input, batchLabels);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        cropFill?.Dispose();
        labels.Dispose();
        features.Dispose();
    }
}
