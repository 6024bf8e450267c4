using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Modules;
using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// The model as the uplink sees it: the <see cref="ModelLayout"/> (every parameter and running
/// statistic, in store order) and, per layer, the parameter it comes from.
/// </summary>
public sealed class UplinkModel
{
    /// <summary>Builds the layout of <paramref name="store"/>, with <paramref name="sparse"/> the SWAT-sparse weights.</summary>
    public UplinkModel(ParameterStore store, IReadOnlyCollection<Parameter> sparse)
    {
        Parameters = store.Parameters;
        var sparseNames = sparse.Select(p => p.FullName).ToHashSet();
        Layout = ModelLayout.FromParameters(Parameters, p => sparseNames.Contains(p.FullName), includeRunningStatistics: true);
    }

    /// <summary>The layers.</summary>
    public ModelLayout Layout { get; }

    /// <summary>The parameter of each layer (same order as <see cref="Layout"/>).</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Largest layer, in elements.</summary>
    public int MaxLength => Layout.Layers.Max(l => l.Length);

    /// <summary>Largest row count of a layer's 2-D view.</summary>
    public int MaxRows => Layout.Layers.Max(l => l.Rows);

    /// <summary>The view of layer <paramref name="layer"/> inside a store's value block (same layout in every model of this architecture).</summary>
    public ArrayView<float> View(ArrayView<float> values, int layer) => values.SubView(Parameters[layer].Offset, Parameters[layer].Length);
}

/// <summary>
/// Client side of the uplink, on the device: after local training, computes what the strategy
/// sends for every layer (top-K selection and CSR encoding of exactly the selected positions by
/// device kernels, a chosen entry whose value is 0 included), lays each sparse layer out in the
/// <see cref="LayerEncoding"/> that <see cref="UplinkBytes.Choose"/> picks for the settings' mode
/// (16-bit columns, bitmap or dense made from the CSR by device kernels), rounds the values of a
/// slice to fp16 or bf16 on the device when <see cref="UplinkSettings.Values"/> asks for it, and
/// copies only that to the host as a <see cref="WireUpload"/>. Scratch is allocated once, sized
/// for the largest layer.
/// </summary>
public sealed class DeviceUplinkEncoder : IDisposable
{
    private readonly ComputeDevice device;
    private readonly UplinkModel model;
    private readonly UplinkSettings settings;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> difference, values;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> columns, rowPointers, rowTies, topKScratch, selectionState, words;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> values16;

    /// <summary>Allocates the scratch for <paramref name="model"/>'s largest layer.</summary>
    public DeviceUplinkEncoder(ComputeDevice device, UplinkModel model, UplinkSettings settings)
    {
        this.device = device;
        this.model = model;
        this.settings = settings;
        int n = model.MaxLength;
        var a = device.Accelerator;
        difference = a.Allocate1D<float>(n);
        values = a.Allocate1D<float>(n);
        columns = a.Allocate1D<int>(n);
        rowPointers = a.Allocate1D<int>(model.MaxRows + 1);
        rowTies = a.Allocate1D<int>(model.MaxRows);
        topKScratch = a.Allocate1D<int>(device.Kernels.TopK.ScratchLength(n));
        // The layer's selection stays on the device: a GPU masks with it without reading it back.
        selectionState = a.Allocate1D<int>(TopKSelection.StateInts);
        // 16-bit columns or a bitmap, whichever layout needs more words.
        words = a.Allocate1D<int>(Math.Max(SparseFormatKernels.BitmapWords(n), SparseFormatKernels.PackedColumnWords(n)));
        values16 = a.Allocate1D<ushort>(settings.Values == UploadValues.Fp32 ? 1 : n);
    }

    /// <summary>Device bytes of the scratch.</summary>
    public long Bytes => (difference.Length + values.Length) * sizeof(float)
        + (columns.Length + rowPointers.Length + rowTies.Length + topKScratch.Length + selectionState.Length + words.Length) * sizeof(int)
        + values16.Length * sizeof(ushort);

    /// <summary>
    /// The upload of a client whose trained values are <paramref name="trained"/> and whose round
    /// started from <paramref name="global"/> (both full store value blocks).
    /// </summary>
    public WireUpload Encode(int clientId, long exampleCount, ArrayView<float> trained, ArrayView<float> global)
    {
        var k = device.Kernels;
        bool diff = settings.Strategy.SendsDifferences();
        var layers = new WireLayer[model.Layout.Layers.Count];
        for (int l = 0; l < layers.Length; l++)
        {
            var spec = model.Layout.Layers[l];
            int n = spec.Length;
            var w = model.View(trained, l);
            var source = w;
            if (diff)
            {
                source = difference.View.SubView(0, n);
                k.Activation.Subtract(w, model.View(global, l), source);
            }
            int keep = spec.Sparse && settings.Strategy.SparsifiesUpload() ? settings.KeepCount(n) : n;
            if (keep == n)
            {
                layers[l] = Send(source, settings.ValuesOf(spec));
                continue;
            }
            var scratch = topKScratch.View;
            // Top-K of the values themselves (|w_E|, or |d| for Top-K-Weights Diff), or for Diff on
            // Top-K-Weights the positions of |w_E|'s top-K with d's values there.
            var ranked = settings.Strategy switch
            {
                UplinkStrategy.TopKWeights or UplinkStrategy.TopKWeightsDiff => source,
                UplinkStrategy.DiffOnTopKWeights => w,
                _ => throw new InvalidOperationException($"strategy {settings.Strategy.Name()} does not sparsify uploads"),
            };
            var selection = k.TopK.Select(ranked, keep, scratch, selectionState.View);
            int nonZeros = k.Csr.PlanSelected(ranked, selection, spec.Rows, spec.Columns, rowPointers.View, rowTies.View);
            k.Csr.EncodeSelected(ranked, selection, spec.Rows, spec.Columns, rowPointers.View, rowTies.View, nonZeros, columns.View, values.View);
            if (settings.Strategy == UplinkStrategy.DiffOnTopKWeights && nonZeros > 0)
            {
                k.Csr.Gather(source, spec.Rows, spec.Columns, rowPointers.View.SubView(0, spec.Rows + 1), columns.View.SubView(0, nonZeros),
                    values.View.SubView(0, nonZeros));
            }
            layers[l] = Layout(spec, nonZeros);
        }
        return new WireUpload(clientId, exampleCount, settings.Strategy, layers);
    }

    /// <summary>The layer held as CSR in the scratch (row pointers, columns, values; <paramref name="count"/> entries), in the layout chosen for it, on the host.</summary>
    private WireLayer Layout(LayerSpec spec, int count)
    {
        var k = device.Kernels;
        ArrayView<int> rows = rowPointers.View.SubView(0, spec.Rows + 1);
        ArrayView<float> kept = values.View.SubView(0, count);
        var width = settings.ValuesOf(spec);
        switch (UplinkBytes.Choose(settings.Encoding, spec, count, width))
        {
            case LayerEncoding.Csr32:
                return Send(kept, width) with { RowPointers = Download(rows), Columns = Download<int>(columns.View.SubView(0, count)), Encoding = LayerEncoding.Csr32 };
            case LayerEncoding.Csr16:
                ArrayView<int> packed = words.View.SubView(0, SparseFormatKernels.PackedColumnWords(count));
                k.SparseFormats.PackColumns16(columns.View, count, packed);
                return Send(kept, width) with { RowPointers = Download(rows), Columns16 = Download(packed), Encoding = LayerEncoding.Csr16 };
            case LayerEncoding.Bitmap:
                ArrayView<int> bitmap = words.View.SubView(0, SparseFormatKernels.BitmapWords(spec.Length));
                k.SparseFormats.BitmapFromCsr(rows, columns.View.SubView(0, Math.Max(1, count)), spec.Rows, spec.Columns, bitmap);
                return Send(kept, width) with { Bitmap = Download(bitmap), Encoding = LayerEncoding.Bitmap };
            default:
                // Dense is smaller: the kept entries in place, zeros elsewhere (the difference
                // scratch is free again once the values are gathered).
                ArrayView<float> whole = difference.View.SubView(0, spec.Length);
                k.Csr.Decode(rows, columns.View.SubView(0, Math.Max(1, count)), values.View.SubView(0, Math.Max(1, count)), spec.Rows, spec.Columns, whole);
                return Send(whole, width);
        }
    }

    /// <summary>A dense layer of <paramref name="values"/> on the host, fp32 or rounded to the 16-bit <paramref name="width"/> on the device first; the caller adds a sparse layout's arrays and tag.</summary>
    private WireLayer Send(ArrayView<float> values, UploadValues width)
    {
        if (width == UploadValues.Fp32)
        {
            return new WireLayer(Download(values));
        }
        ArrayView<ushort> bits = values16.View.SubView(0, values.Length);
        device.Kernels.Float16.Encode(values, bits, width.Format());
        return new WireLayer([]) { Values16 = Download(bits), ValueFormat = width };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        values16.Dispose();
        words.Dispose();
        selectionState.Dispose();
        topKScratch.Dispose();
        rowTies.Dispose();
        rowPointers.Dispose();
        columns.Dispose();
        values.Dispose();
        difference.Dispose();
    }

    private T[] Download<T>(ArrayView<T> view)
        where T : unmanaged
    {
        var host = new T[view.Length];
        device.Kernels.Launch.ReadBack(view, host);
        return host;
    }
}
