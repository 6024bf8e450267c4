using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// Server side of FedAvg on the device. Each validated upload is staged on the device and added,
/// weighted by its example count, into one sum over the whole model (CSR layers by a weighted
/// scatter-add, 16-bit columns unpacked first; bitmap layers by the bitmap's scatter-add; dense
/// layers by an axpy), each layout adding the same terms in the same order; fp16 / bf16 values are
/// decoded to fp32 on the device first (exactly); an entry a client did not send adds nothing, i.e. counts as
/// zero in that client's term. <see cref="Finish"/> divides by the total examples and either replaces
/// the global model (weights) or adds to it (the diff strategies), and reports each sparse layer's
/// non-zero ratio after aggregation (the overlap of the clients' masks, ZeroFL Fig. 2). With an
/// adaptive <see cref="ServerOptimizer"/> the trainable values take its step instead.
/// </summary>
public sealed class DeviceAggregator : IDisposable
{
    private readonly ComputeDevice device;
    private readonly UplinkModel model;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> sum, stagedValues;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> stagedRows, stagedColumns, stagedWords, chunkPrefix;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> stagedValues16;
    private long examples;
    private int clients;

    /// <summary>Allocates the sum (one model) and the staging buffers (one layer).</summary>
    public DeviceAggregator(ComputeDevice device, UplinkModel model)
    {
        this.device = device;
        this.model = model;
        var a = device.Accelerator;
        sum = a.Allocate1D<float>(Math.Max(1, model.Parameters.Sum(p => p.Length)));
        stagedValues = a.Allocate1D<float>(model.MaxLength);
        stagedColumns = a.Allocate1D<int>(model.MaxLength);
        stagedRows = a.Allocate1D<int>(model.MaxRows + 1);
        stagedWords = a.Allocate1D<int>(Math.Max(SparseFormatKernels.BitmapWords(model.MaxLength), SparseFormatKernels.PackedColumnWords(model.MaxLength)));
        chunkPrefix = a.Allocate1D<int>(SparseFormatKernels.ChunkPrefixLength(model.MaxLength));
        stagedValues16 = a.Allocate1D<ushort>(model.MaxLength);
    }

    /// <summary>Device bytes held.</summary>
    public long Bytes => (sum.Length + stagedValues.Length) * sizeof(float)
        + (stagedColumns.Length + stagedRows.Length + stagedWords.Length + chunkPrefix.Length) * sizeof(int)
        + stagedValues16.Length * sizeof(ushort);

    /// <summary>Uploads added since <see cref="Begin"/>.</summary>
    public int Clients => clients;

    /// <summary>Starts a round: the sum is zeroed.</summary>
    public void Begin()
    {
        device.Kernels.Launch.Zero(sum.View.AsContiguous());
        examples = 0;
        clients = 0;
    }

    /// <summary>Adds an upload that <see cref="WireValidator.Validate"/> accepted.</summary>
    public void Add(WireUpload upload)
    {
        var k = device.Kernels;
        float weight = upload.ExampleCount;
        for (int l = 0; l < model.Layout.Layers.Count; l++)
        {
            var spec = model.Layout.Layers[l];
            var wire = upload.Layers[l];
            var target = model.View(sum.View, l);
            int count = wire.Count;
            if (count == 0)
            {
                continue; // a sparse layer with nothing sent adds nothing
            }
            var values = stagedValues.View.BaseView.SubView(0, count);
            if (wire.ValueFormat == UploadValues.Fp32)
            {
                k.Launch.Upload(wire.Values.AsSpan(0, count), values);
            }
            else
            {
                var bits = stagedValues16.View.BaseView.SubView(0, count);
                k.Launch.Upload(wire.Values16.AsSpan(0, count), bits);
                k.Float16.Decode(bits, values, wire.ValueFormat.Format());
            }
            switch (wire.Encoding)
            {
                case LayerEncoding.Dense:
                    k.Activation.Axpy(values, target, weight);
                    continue;
                case LayerEncoding.Bitmap:
                    var bitmap = stagedWords.View.BaseView.SubView(0, wire.Bitmap!.Length);
                    k.Launch.Upload(wire.Bitmap.AsSpan(), bitmap);
                    k.SparseFormats.BitmapScatterAdd(bitmap, values, weight, spec.Length, chunkPrefix.View, target);
                    continue;
            }
            var rows = stagedRows.View.BaseView.SubView(0, spec.Rows + 1);
            k.Launch.Upload(wire.RowPointers.AsSpan(0, spec.Rows + 1), rows);
            var columns = stagedColumns.View.BaseView.SubView(0, count);
            if (wire.Columns16 is { } packed)
            {
                var words = stagedWords.View.BaseView.SubView(0, packed.Length);
                k.Launch.Upload(packed.AsSpan(), words);
                k.SparseFormats.UnpackColumns16(words, count, columns);
            }
            else
            {
                k.Launch.Upload(wire.Columns.AsSpan(0, count), columns);
            }
            k.Csr.ScatterAdd(rows, columns, values, weight, spec.Rows, spec.Columns, target);
        }
        examples += upload.ExampleCount;
        clients++;
    }

    /// <summary>
    /// Ends the round: the global values become the weighted average (or, for the diff strategies,
    /// move by it). Returns the non-zero ratio of every sparse layer's aggregated upload (layout
    /// order, sparse layers only), or null when no upload arrived (the global model is unchanged).
    /// </summary>
    public double[]? Finish(ArrayView<float> globalValues, UplinkStrategy strategy) => Finish(globalValues, strategy, null, 0);

    /// <summary>
    /// Ends round <paramref name="round"/> as <see cref="Finish(ArrayView{float}, UplinkStrategy)"/>
    /// does, except that with an <paramref name="optimizer"/> the trainable values take its step
    /// with the pseudo-gradient (the average minus the global values, or the average difference);
    /// the running statistics after them are plain-averaged all the same.
    /// </summary>
    public double[]? Finish(ArrayView<float> globalValues, UplinkStrategy strategy, ServerOptimizer? optimizer, int round)
    {
        if (clients == 0)
        {
            return null;
        }
        var k = device.Kernels;
        var ratios = new List<double>();
        for (int l = 0; l < model.Layout.Layers.Count; l++)
        {
            if (model.Layout.Layers[l].Sparse && strategy.SparsifiesUpload())
            {
                ratios.Add((double)k.Uplink.CountNonZero(model.View(sum.View, l)) / model.Layout.Layers[l].Length);
            }
        }
        var all = sum.View.SubView(0, globalValues.Length);
        k.Uplink.Scale(all, (float)(1.0 / examples));
        long stepped = optimizer?.Length ?? 0;
        if (optimizer is not null)
        {
            optimizer.Step(globalValues.SubView(0, stepped), all.SubView(0, stepped), strategy.SendsDifferences(), round);
        }
        if (stepped < globalValues.Length)
        {
            Average(all.SubView(stepped, all.Length - stepped), globalValues.SubView(stepped, globalValues.Length - stepped), strategy);
        }
        return ratios.ToArray();
    }

    /// <summary>FedAvg: the global values become the average, or move by it for the diff strategies.</summary>
    private void Average(ArrayView<float> average, ArrayView<float> globalValues, UplinkStrategy strategy)
    {
        if (strategy.SendsDifferences())
        {
            device.Kernels.Activation.Axpy(average, globalValues, 1f);
        }
        else
        {
            average.CopyTo(globalValues);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        stagedValues16.Dispose();
        chunkPrefix.Dispose();
        stagedWords.Dispose();
        stagedRows.Dispose();
        stagedColumns.Dispose();
        stagedValues.Dispose();
        sum.Dispose();
    }
}
