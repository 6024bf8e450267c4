using ZeroFL.Kernels.Reference;

namespace ZeroFL.Federation.Uplink;

/// <summary>
/// Host reference of what a client uploads (ZEROFL.md, "ZeroFL uplink"); the device code is checked
/// against it. For a sparse layer of n entries with K = <see cref="UplinkSettings.KeepCount"/>:
/// <list type="bullet">
/// <item>Dense, Swat: w_E whole.</item>
/// <item>TopKWeights: positions = top-K of |w_E|; values w_E there.</item>
/// <item>DiffOnTopKWeights: positions = top-K of |w_E|; values d = w_E - w_t there.</item>
/// <item>TopKWeightsDiff: d = w_E - w_t everywhere; positions = top-K of |d|; values d there.</item>
/// </list>
/// Top-K is exact with ties broken by lower index (<see cref="MagnitudeTopK"/>); d is computed in
/// fp32 (w_E[i] - w_t[i] rounded to float), as the device does. With 16-bit
/// <see cref="UplinkSettings.Values"/> a slice's values are what the server decodes: each rounded
/// to fp16 or bf16 (nearest even) and back; positions are chosen on the fp32 values.
/// Dense layers are sent whole: w_E for Dense, Swat and TopKWeights; d for the two diff strategies,
/// so that one server rule, w_{t+1} = w_t + sum_k (n_k/n) d^k, covers every layer of a diff upload.
/// For a dense layer that rule equals plain weight averaging, sum_k (n_k/n) w_E^k, because the
/// weights n_k/n sum to 1 (up to rounding).
/// </summary>
public static class UplinkReference
{
    /// <summary>
    /// The upload of a client that trained the round's global weights <paramref name="global"/> (w_t)
    /// into <paramref name="trained"/> (w_E) on <paramref name="exampleCount"/> examples. Both are one
    /// array per layer of <paramref name="layout"/>; <paramref name="global"/> may be null unless the
    /// strategy sends differences. Reads its inputs only.
    /// </summary>
    public static ClientUpload Encode(ModelLayout layout, UplinkSettings settings, IReadOnlyList<float[]> trained,
        IReadOnlyList<float[]>? global, long exampleCount)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(settings);
        layout.CheckWeights(trained, "trained weights");
        bool differences = settings.Strategy.SendsDifferences();
        if (differences)
        {
            layout.CheckWeights(global ?? throw new ArgumentNullException(nameof(global),
                $"uplink strategy {settings.Strategy.Name()} sends w_E - w_t and needs the global weights"), "global weights");
        }
        var layers = new LayerUpload[layout.Layers.Count];
        for (int l = 0; l < layers.Length; l++)
        {
            var spec = layout.Layers[l];
            float[] w = trained[l];
            float[]? d = differences ? Difference(w, global![l]) : null;
            if (!spec.Sparse || !settings.Strategy.SparsifiesUpload())
            {
                layers[l] = LayerUpload.Whole(spec, d ?? w);
                continue;
            }
            int k = settings.KeepCount(spec.Length);
            float[] ranked = settings.Strategy == UplinkStrategy.TopKWeightsDiff ? d! : w;
            int[] positions = MagnitudeTopK.Indices(ranked, k);
            float[] sent = d ?? w;
            var values = new float[k];
            var width = settings.ValuesOf(spec);
            for (int j = 0; j < k; j++)
            {
                values[j] = width == UploadValues.Fp32 ? sent[positions[j]] : Float16Reference.Round(sent[positions[j]], width.Format());
            }
            layers[l] = LayerUpload.Slice(spec, positions, values);
        }
        return new ClientUpload(settings.Strategy, exampleCount, layers);
    }

    private static float[] Difference(float[] trained, float[] global)
    {
        var d = new float[trained.Length];
        for (int i = 0; i < d.Length; i++)
        {
            d[i] = trained[i] - global[i];
        }
        return d;
    }
}
